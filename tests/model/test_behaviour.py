"""Behavioural tests of the trained models: minimum functionality, invariance, direction.

The models are fitted on the generated sample (no MLflow), so these tests check
what the default pipeline learns from realistic ticket text, not the quality of a
production model. Phrasings stay close to the sample's vocabulary: a bag-of-words
model trained on it cannot know words it never saw.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.predictor import TicketClassifier
from features.schema import TASKS
from training import behaviour
from training.config import load_config
from training.pipelines import fit_classifier

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def models(tickets) -> dict[str, TicketClassifier]:
    return {task: fit_classifier(tickets, task, load_config(task)) for task in TASKS}


@pytest.fixture(scope="module")
def batch() -> pd.DataFrame:
    """Tickets the models have not seen (another seed), every language and channel."""
    return behaviour.probe_batch()


def predict(model: TicketClassifier, bodies: list[str], subjects: list[str] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame({"subject": subjects or [""] * len(bodies), "body": bodies})
    return model.predict_frame(frame)


def mass(answer: pd.DataFrame, labels: tuple[str, ...]) -> np.ndarray:
    return np.asarray([sum(p[label] for label in labels) for p in answer["probabilities"]])


# --------------------------------------------------------------------- minimum functionality

OBVIOUS = [
    ("urgency", "Our production server is down, all users affected, we are losing money", {"critical", "high"}),
    ("urgency", "Just a question, nothing urgent: where do I change the interface language?", {"low"}),
    ("category", "I was charged twice on my invoice, please refund", {"billing"}),
    ("category", "My package has not arrived yet and the tracking number shows no update for ten days.", {"shipping"}),
    ("category", "We got a login alert from an unknown country and nobody on our team was there.", {"security"}),
    ("category", "How do I export my reports to a CSV file?", {"how_to"}),
    ("category", "The app crashes every time I open it after the update.", {"technical"}),
    ("sentiment", "Thank you so much, great service!", {"positive"}),
    ("sentiment", "This is unacceptable, I am very frustrated with your support.", {"negative"}),
    ("sentiment", "Please let me know the next steps. I have included the relevant details.", {"neutral"}),
]


@pytest.mark.parametrize("task, text, expected", OBVIOUS, ids=[f"{t}-{sorted(e)[0]}" for t, _, e in OBVIOUS])
def test_obvious_tickets(models, task, text, expected):
    answer = predict(models[task], [text]).iloc[0]
    assert answer["label"] in expected, f"{text!r}: {answer['label']} ({answer['probabilities']})"


def test_the_outage_ticket_puts_most_mass_on_critical_and_high(models):
    answer = predict(models["urgency"], ["Our production server is down, all users affected, we are losing money"])
    assert mass(answer, ("critical", "high"))[0] > 0.7


# --------------------------------------------------------------------- invariance
# The checks live in training.behaviour: the retraining gate runs the same ones.

@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("slot", list(behaviour.SUBSTITUTES))
def test_replacing_personal_details_does_not_change_the_label(models, task, slot):
    check = behaviour.label_invariant_to(models[task], slot)
    assert check.passed, f"{task}: {check}"
    assert check.cases >= len(behaviour.TEMPLATES) // 2, f"{task}: the model is torn on most templates ({check})"


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("slot", behaviour.MASKED_SLOTS)
def test_masked_details_leave_the_probabilities_untouched(models, task, slot):
    """E-mail addresses and phone numbers are masked before features: the model never sees them."""
    check = behaviour.masked_detail_ignored(models[task], slot)
    assert check.passed, f"{task}: {check}"


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("slot", behaviour.UNMASKED_SLOTS)
def test_names_and_order_numbers_move_probabilities_only_a_little(models, task, slot):
    check = behaviour.unmasked_detail_moves_little(models[task], slot)
    assert check.passed, f"{task}: {check}"


# --------------------------------------------------------------------- direction

def test_production_down_never_lowers_critical_and_high_by_much(models, batch):
    check = behaviour.outage_raises_urgency(models["urgency"], batch)
    assert check is not None and check.passed, check


def test_appended_outage_at_the_end_of_short_tickets_also_raises_urgency(models):
    check = behaviour.appended_outage_raises_urgency(models["urgency"])
    assert check is not None and check.passed, check


def test_frustration_increases_negative_sentiment(models, batch):
    check = behaviour.frustration_raises_negative(models["sentiment"], batch)
    assert check is not None and check.passed, check


def test_thanks_increases_positive_sentiment(models, batch):
    check = behaviour.thanks_raises_positive(models["sentiment"], batch)
    assert check is not None and check.passed, check


# --------------------------------------------------------------------- the gate's view

def test_direction_checks_that_need_absent_labels_do_not_apply(models, batch):
    assert behaviour.outage_raises_urgency(models["category"], batch) is None
    assert behaviour.frustration_raises_negative(models["urgency"], batch) is None
    names = {check.name for check in behaviour.run_checks(models["category"], batch)}
    assert names and not any(name.startswith("direction") for name in names)


@pytest.mark.parametrize("task", TASKS)
def test_the_sample_models_pass_the_gate_checks(models, batch, task):
    assert behaviour.behaviour_failures(models[task], batch) == []


def test_a_model_that_reacts_to_names_fails_the_gate(tickets, batch):
    """Tickets from one customer name are all billing: the model learns the name, and the check says so."""
    skewed = tickets.copy()
    named = skewed["category"] == "billing"
    skewed.loc[named, "body"] = "Oluwaseun Adeyemi Oluwaseun Adeyemi. " + skewed.loc[named, "body"]
    model = fit_classifier(skewed, "category", load_config("category"))
    failures = behaviour.behaviour_failures(model, batch)
    assert any("vs name" in failure for failure in failures), failures
