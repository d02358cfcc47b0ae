"""Behavioural checks of a trained model: invariance and direction (pure).

The same checks run as the behavioural test tier (``tests/model/test_behaviour.py``)
and inside the retraining gate (``training.retrain``): a candidate whose label
flips when a customer's name changes, or whose urgency falls when a ticket says
production is down, is not promoted however good its macro-F1.

Each check takes a fitted ``TicketClassifier`` and returns a ``BehaviourCheck``,
or ``None`` when it does not apply (a direction check needs the labels it talks
about: a category model has no ``critical`` class). Thresholds were measured on
models fitted on the generated sample (``training.sample``), which also supplies
the default probe batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.predictor import TicketClassifier

#: Templates with clear cues for all three tasks, so a changed label means the model
#: reacted to the substituted detail, not that the ticket was a coin toss.
TEMPLATES: tuple[tuple[str, str], ...] = (
    ("Refund request for order {order}",
     "Hi, this is {name}. I was charged twice for order {order}. Please refund the duplicate payment, it is not "
     "urgent, whenever you get a chance. This is the third time I am writing about this! You can reach me at "
     "{email} or {phone}.\n\nThanks"),
    ("Cannot log in",
     "Hello, my name is {name} and since this morning I cannot log in to my account. The reset e-mail never "
     "arrives at {email}. Call me on {phone}. Order {order} is blocked because of this."),
    ("Package damaged",
     "Order {order} arrived damaged and the box was open. Please look into this as soon as possible. I am very "
     "frustrated with this. Contact: {name}, {email}, {phone}."),
    ("URGENT: site down",
     "{name} here. Production is down and all users are affected. Please call {phone} or write to {email} "
     "immediately. Our order {order} for the upgrade is pending."),
    ("Feature idea",
     "Hi team, {name} from Northwind. It would be great to have a dark mode. No rush. Thanks so much, great "
     "service as always! ({email}, {phone}, ref {order})"),
)
SUBSTITUTES: dict[str, tuple[str, ...]] = {
    "name": ("Emily Carter", "Jürgen Weißmüller", "Oluwaseun Adeyemi", "Mei Chen", "José García"),
    "email": ("emily.carter@example.com", "jw@firma-beispiel.de", "o.adeyemi+support@mail.example.org",
              "mei_chen@corp.example.net", "jose.garcia@correo.example.es"),
    "order": ("#48213", "#10007", "A-55120", "#99871", "ORD-2026-0042"),
    "phone": ("+1 (218) 555-0173", "+49 30 12345678", "+44 20 7946 0958", "555-0123", "+33 1 23 45 67 89"),
}
DEFAULTS = {slot: values[0] for slot, values in SUBSTITUTES.items()}
#: Slots masked before features: the model never sees them.
MASKED_SLOTS = ("email", "phone")
#: Slots not masked (agents need order numbers; names are hard to mask): they may move
#: probabilities a little, never by more than this.
UNMASKED_SLOTS = ("name", "order")
UNMASKED_MAX_SHIFT = 0.15
#: A template whose two most likely labels are closer than this may tip either way on
#: any change; the label check skips it (the probability checks still bound it).
TORN_MARGIN = 0.1

#: On the sample the critical+high mass never falls by more than ~0.07 when a ticket
#: adds "Production is down." (medium tickets that also say "it's not blocking us").
URGENCY_EPSILON = 0.1
OUTAGE = "Production is down."
FRUSTRATION = "This is unacceptable, very frustrated."
THANKS = "Thank you so much, great service!"
SHORT_TICKETS = ("Where do I set up e-mail notifications?", "The invoice total looks wrong.",
                 "Tracking has not updated in three days.", "Please add a dark mode.")
PROBE_ROWS, PROBE_SEED = 200, 99


@dataclass(frozen=True)
class BehaviourCheck:
    name: str
    passed: bool
    detail: str
    cases: int  # how many tickets (or templates) the verdict rests on

    def __str__(self) -> str:
        return f"{self.name}: {'passed' if self.passed else 'FAILED'} ({self.detail})"


def probe_batch() -> pd.DataFrame:
    """Generated tickets no model was trained on (another seed), every language and channel."""
    from training.sample import generate_tickets

    return generate_tickets(PROBE_ROWS, seed=PROBE_SEED)


# --------------------------------------------------------------------- helpers

def variants(slot: str) -> pd.DataFrame:
    """Each template once per substitute value of ``slot`` (the other slots fixed)."""
    rows = []
    for subject, body in TEMPLATES:
        for value in SUBSTITUTES[slot]:
            slots = dict(DEFAULTS, **{slot: value})
            rows.append((subject.format(**slots), body.format(**slots)))
    return pd.DataFrame(rows, columns=["subject", "body"])


def by_template(values) -> np.ndarray:
    """Rows of ``variants(slot)`` regrouped as (template, substitute, ...)."""
    return np.asarray(values).reshape(len(TEMPLATES), len(SUBSTITUTES["name"]), *np.shape(values)[1:])


def mass(probabilities: np.ndarray, model: TicketClassifier, labels: Iterable[str]) -> np.ndarray:
    """Per row, the probability of any of ``labels``."""
    columns = [model.labels.index(label) for label in labels]
    return probabilities[:, columns].sum(axis=1)


def with_text(batch: pd.DataFrame, phrase: str) -> pd.DataFrame:
    """The batch with ``phrase`` added at the start of the body.

    At the start: text after a signature, a sign-off or a quoted reply is cut by the
    cleaning, so appending would often change nothing.
    """
    changed = batch.copy()
    changed["body"] = phrase + " " + changed["body"].fillna("").astype(str)
    return changed


def _bodies(bodies: Iterable[str]) -> pd.DataFrame:
    bodies = list(bodies)
    return pd.DataFrame({"subject": [""] * len(bodies), "body": bodies})


def _has(model: TicketClassifier, *labels: str) -> bool:
    return set(labels) <= set(model.labels)


# --------------------------------------------------------------------- invariance

def label_invariant_to(model: TicketClassifier, slot: str) -> BehaviourCheck:
    """Replacing a personal detail (name, e-mail, order number, phone) does not change the label."""
    frame = variants(slot)
    probabilities = model.predict_proba(frame)
    labels = by_template(np.asarray(model.labels, dtype=object)[probabilities.argmax(axis=1)])
    grouped = by_template(probabilities)
    flips, checked = [], 0
    for (subject, _), row, probs in zip(TEMPLATES, labels, grouped):
        top_two = np.sort(probs[0])[-2:]
        if top_two[1] - top_two[0] < TORN_MARGIN:
            continue
        checked += 1
        if len(set(row)) > 1:
            flips.append(f"{subject!r}: {list(row)}")
    detail = f"label changes with the {slot} on " + "; ".join(flips) if flips else (
        f"label stable on {checked} of {len(TEMPLATES)} templates (the others are torn)")
    return BehaviourCheck(f"invariance: label vs {slot}", not flips, detail, checked)


def masked_detail_ignored(model: TicketClassifier, slot: str) -> BehaviourCheck:
    """E-mail addresses and phone numbers are masked before features: probabilities do not move at all."""
    probabilities = by_template(model.predict_proba(variants(slot)))
    shift = float(np.abs(probabilities - probabilities[:, :1]).max())
    return BehaviourCheck(f"invariance: probabilities vs {slot}", shift <= 1e-9,
                          f"largest probability shift {shift:.2g}", len(TEMPLATES))


def unmasked_detail_moves_little(model: TicketClassifier, slot: str) -> BehaviourCheck:
    """Names and order references are kept, so their n-grams weigh something: keep it small."""
    probabilities = by_template(model.predict_proba(variants(slot)))
    shift = float(np.abs(probabilities - probabilities[:, :1]).max())
    return BehaviourCheck(f"invariance: probability shift vs {slot}", shift <= UNMASKED_MAX_SHIFT,
                          f"largest shift {shift:.3f} (limit {UNMASKED_MAX_SHIFT})", len(TEMPLATES))


# --------------------------------------------------------------------- direction

def outage_raises_urgency(model: TicketClassifier, batch: pd.DataFrame) -> BehaviourCheck | None:
    """Adding "Production is down." never lowers critical+high by much and raises it on most tickets."""
    if not _has(model, "critical", "high"):
        return None
    before = mass(model.predict_proba(batch), model, ("critical", "high"))
    after = mass(model.predict_proba(with_text(batch, OUTAGE)), model, ("critical", "high"))
    change = after - before
    share_up = float((change > 0).mean())
    passed = change.min() >= -URGENCY_EPSILON and change.mean() > 0.02 and share_up >= 0.75
    worst = batch["body"].iloc[int(change.argmin())]
    return BehaviourCheck(
        "direction: outage raises urgency", bool(passed),
        f"critical+high mass: mean change {change.mean():+.3f}, rises on {share_up:.0%}, "
        f"worst {change.min():+.3f} (limit {-URGENCY_EPSILON}) on {str(worst)[:80]!r}", len(batch))


def appended_outage_raises_urgency(model: TicketClassifier) -> BehaviourCheck | None:
    """Short calm tickets ending in "Production is down." gain more than 0.1 critical+high mass."""
    if not _has(model, "critical", "high"):
        return None
    before = mass(model.predict_proba(_bodies(SHORT_TICKETS)), model, ("critical", "high"))
    after = mass(model.predict_proba(_bodies(f"{b} {OUTAGE}" for b in SHORT_TICKETS)), model, ("critical", "high"))
    passed = bool((after > before + 0.1).all())
    pairs = ", ".join(f"{b:.2f}->{a:.2f}" for b, a in zip(before, after))
    return BehaviourCheck("direction: appended outage raises urgency", passed,
                          f"critical+high mass {pairs}", len(SHORT_TICKETS))


def frustration_raises_negative(model: TicketClassifier, batch: pd.DataFrame) -> BehaviourCheck | None:
    """Adding a frustrated sentence raises the negative probability of every ticket."""
    if not _has(model, "negative"):
        return None
    before = mass(model.predict_proba(batch), model, ("negative",))
    after = mass(model.predict_proba(with_text(batch, FRUSTRATION)), model, ("negative",))
    change = after - before
    passed = bool((change > 0).all() and change.mean() > 0.2)
    return BehaviourCheck("direction: frustration raises negative", passed,
                          f"mean change {change.mean():+.3f}, falls on {int((change <= 0).sum())} tickets "
                          f"(worst {change.min():+.3f})", len(batch))


def thanks_raises_positive(model: TicketClassifier, batch: pd.DataFrame) -> BehaviourCheck | None:
    """Adding thanks to tickets that are not already positive raises their positive probability."""
    if not _has(model, "positive"):
        return None
    if "sentiment" in batch.columns:
        calm = batch[batch["sentiment"].astype(str) != "positive"]
    else:
        predicted = np.asarray(model.labels, dtype=object)[model.predict_proba(batch).argmax(axis=1)]
        calm = batch[predicted != "positive"]
    if calm.empty:
        return None
    before = mass(model.predict_proba(calm), model, ("positive",))
    after = mass(model.predict_proba(with_text(calm, THANKS)), model, ("positive",))
    change = after - before
    passed = bool((change > -0.01).all() and change.mean() > 0.1)
    return BehaviourCheck("direction: thanks raises positive", passed,
                          f"mean change {change.mean():+.3f}, worst {change.min():+.3f}", len(calm))


# --------------------------------------------------------------------- all of them

def run_checks(model: TicketClassifier, batch: pd.DataFrame | None = None) -> list[BehaviourCheck]:
    """Every check that applies to ``model``'s label set; ``batch`` defaults to ``probe_batch()``."""
    batch = probe_batch() if batch is None else batch
    checks: list[Callable[[], BehaviourCheck | None]] = [
        *(lambda slot=slot: label_invariant_to(model, slot) for slot in SUBSTITUTES),
        *(lambda slot=slot: masked_detail_ignored(model, slot) for slot in MASKED_SLOTS),
        *(lambda slot=slot: unmasked_detail_moves_little(model, slot) for slot in UNMASKED_SLOTS),
        lambda: outage_raises_urgency(model, batch),
        lambda: appended_outage_raises_urgency(model),
        lambda: frustration_raises_negative(model, batch),
        lambda: thanks_raises_positive(model, batch),
    ]
    return [result for check in checks if (result := check()) is not None]


def behaviour_failures(model: TicketClassifier, batch: pd.DataFrame | None = None) -> list[str]:
    """The failed checks as reasons for the promotion gate (empty: the model behaves)."""
    return [f"behaviour: {check}" for check in run_checks(model, batch) if not check.passed]
