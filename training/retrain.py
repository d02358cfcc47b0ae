"""Retraining from agents' corrections: the pure steps.

``build_training_set`` merges the historical tickets with the corrections of one
task, ``split_for_retraining`` holds out recent tickets in time order, and
``correction_ledger`` says which corrections a model learnt from (logged to
MLflow). The edge that trains, gates and promotes is
``training.workflows.retrain_task``.

A correction frame is what ``store.Store.corrections_frame()`` returns: one row per
correction with ``id``, ``ticket_id``, ``task``, ``label`` (the corrected one),
``original_label``, ``agent_id``, ``misrouted``, ``created_at`` (and ``updated_at``
when the agent changed it later) and the ticket's recorded, PII-masked text and
metadata (``subject``, ``body``, ``channel``, ``customer_tier``, ``language``,
``ticket_created_at``, ``customer_timezone``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from features.schema import TEXT_COLUMNS, TICKET_COLUMNS, TicketColumn
from training.split import stratified_split, time_split

#: Columns ``build_training_set`` adds to the ticket frame.
WEIGHT = "sample_weight"
CORRECTED = "corrected"
CORRECTION_ID = "correction_id"

#: Ticket columns of a correction row, under the ticket frame's names.
_TICKET_FIELDS = {
    "ticket_id": TicketColumn.ID.value,
    "subject": TicketColumn.SUBJECT.value,
    "body": TicketColumn.BODY.value,
    "channel": TicketColumn.CHANNEL.value,
    "customer_tier": TicketColumn.CUSTOMER_TIER.value,
    "language": TicketColumn.LANGUAGE.value,
    "ticket_created_at": TicketColumn.CREATED_AT.value,
    "customer_timezone": TicketColumn.CUSTOMER_TIMEZONE.value,
}


def latest_corrections(corrections: pd.DataFrame, task: str) -> pd.DataFrame:
    """One correction per ticket for ``task``: the most recent one (by last change, then id).

    Corrections without a label say nothing to learn from and are left out.
    """
    if corrections.empty:
        return pd.DataFrame(columns=[CORRECTION_ID, "ticket_id", "task", "label"])
    rows = corrections[(corrections["task"] == task) & _has_value(corrections["label"])].copy()
    rows["ticket_id"] = rows["ticket_id"].astype(str)
    rows["_when"] = pd.to_datetime(_when_changed(rows), utc=True, format="mixed", errors="coerce")
    order = ["_when", CORRECTION_ID] if CORRECTION_ID in rows.columns else ["_when"]
    rows = rows.sort_values(order, kind="stable", na_position="first")
    return rows.drop_duplicates(subset="ticket_id", keep="last").drop(columns="_when")


def build_training_set(
    history: pd.DataFrame, corrections: pd.DataFrame, task: str, weight: float = 3.0
) -> pd.DataFrame:
    """The historical tickets with the corrections of ``task`` applied (pure).

    - A correction overrides the ticket's label; the latest correction per ticket wins.
    - Corrected tickets weigh ``weight`` in training (column ``sample_weight``), bulk
      history 1.0; ``corrected`` flags them and ``correction_id`` names the correction.
    - A corrected ticket missing from the history is added from the correction's
      recorded (masked) text and metadata.
    - Duplicates are removed: one row per ticket id (the last one of the export),
      one row per identical (subject, body, label), and a corrected ticket displaces
      uncorrected copies of its text, whose label the agent has just contradicted.

    Counts of what happened are in ``result.attrs["retrain"]``.
    """
    if weight <= 0:
        raise ValueError(f"the weight of corrected tickets must be positive, got {weight}")
    if task not in history.columns:
        raise ValueError(f"the historical tickets have no {task!r} label column")
    effective = latest_corrections(corrections, task)
    frame, duplicate_ids = _one_row_per_ticket(history)
    frame, overridden = _override_labels(frame, effective, task, weight)
    known = set(frame[TicketColumn.ID.value]) if TicketColumn.ID.value in frame.columns else set()
    added = _tickets_from_corrections(effective[~effective["ticket_id"].isin(known)], task, weight)
    combined = pd.concat([frame, added], ignore_index=True) if len(added) else frame.reset_index(drop=True)
    combined[CORRECTED] = combined[CORRECTED].astype(bool)
    deduplicated, dropped_texts = _drop_duplicate_texts(combined, task)
    deduplicated.attrs = {**history.attrs, "retrain": {
        "corrections": int((corrections["task"] == task).sum()) if len(corrections) else 0,
        "corrections_applied": int(deduplicated[CORRECTED].sum()),
        "labels_overridden": overridden,
        "tickets_added": len(added),
        "duplicate_ids_dropped": duplicate_ids,
        "duplicate_texts_dropped": dropped_texts,
    }}
    return deduplicated


def _one_row_per_ticket(history: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """A copy with text ids and the last row of each repeated id; uncorrected weights added."""
    frame = history.copy()
    repeated = 0
    if TicketColumn.ID.value in frame.columns:
        frame[TicketColumn.ID.value] = frame[TicketColumn.ID.value].astype(str)
        duplicated = frame.duplicated(subset=TicketColumn.ID.value, keep="last")
        repeated = int(duplicated.sum())
        frame = frame.loc[~duplicated]
    frame[WEIGHT] = 1.0
    frame[CORRECTED] = False
    frame[CORRECTION_ID] = pd.Series(pd.NA, index=frame.index, dtype="Int64")
    return frame, repeated


def _override_labels(frame: pd.DataFrame, effective: pd.DataFrame, task: str,
                     weight: float) -> tuple[pd.DataFrame, int]:
    """The corrected label, weight and correction id on each history ticket an agent corrected."""
    if TicketColumn.ID.value not in frame.columns or effective.empty:
        return frame, 0
    by_ticket = effective.set_index("ticket_id")
    matched = frame[TicketColumn.ID.value].isin(by_ticket.index)
    ticket_ids = frame.loc[matched, TicketColumn.ID.value]
    frame[task] = frame[task].astype(object)  # a label column read as numbers or all missing takes text too
    frame.loc[matched, task] = by_ticket.loc[ticket_ids, "label"].astype(str).to_numpy()
    frame.loc[matched, WEIGHT] = float(weight)
    frame.loc[matched, CORRECTED] = True
    if CORRECTION_ID in by_ticket.columns:
        frame.loc[matched, CORRECTION_ID] = by_ticket.loc[ticket_ids, CORRECTION_ID].astype("Int64").to_numpy()
    return frame, int(matched.sum())


def _tickets_from_corrections(corrections: pd.DataFrame, task: str, weight: float) -> pd.DataFrame:
    """Ticket rows rebuilt from the text and metadata recorded with each correction."""
    available = {source: target for source, target in _TICKET_FIELDS.items() if source in corrections.columns}
    tickets = corrections[list(available)].rename(columns=available).reset_index(drop=True)
    for column in TICKET_COLUMNS:
        if column not in tickets.columns:
            tickets[column] = None
    if TicketColumn.CREATED_AT.value in tickets.columns:
        tickets[TicketColumn.CREATED_AT.value] = pd.to_datetime(
            tickets[TicketColumn.CREATED_AT.value], utc=True, format="mixed", errors="coerce")
    tickets[task] = corrections["label"].astype(str).to_numpy()
    tickets[WEIGHT] = float(weight)
    tickets[CORRECTED] = True
    ids = corrections.get(CORRECTION_ID, pd.Series(pd.NA, index=corrections.index))
    tickets[CORRECTION_ID] = pd.array(ids.to_numpy(), dtype="Int64")
    return tickets


def _drop_duplicate_texts(frame: pd.DataFrame, task: str) -> tuple[pd.DataFrame, int]:
    text = pd.Series(["\x00".join(parts) for parts in zip(*(_text(frame, c) for c in TEXT_COLUMNS))],
                     index=frame.index, dtype=object)
    corrected = frame[CORRECTED]
    displaced = ~corrected & text.isin(set(text[corrected]))
    # One row per identical (text, label), a corrected copy before an uncorrected one.
    keyed = pd.DataFrame({"text": text, "label": frame[task].astype(str), "uncorrected": ~corrected})
    repeated = keyed.sort_values("uncorrected", kind="stable").duplicated(["text", "label"]).reindex(frame.index)
    drop = displaced | repeated
    return frame.loc[~drop].reset_index(drop=True), int(drop.sum())


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series("", index=frame.index)
    return frame[column].fillna("").astype(str).str.strip()


def _has_value(values: pd.Series) -> pd.Series:
    return values.notna() & (values.astype(str).str.strip() != "")


def _when_changed(rows: pd.DataFrame) -> pd.Series:
    """When the correction got its current label: its last update, else its creation."""
    created = rows["created_at"] if "created_at" in rows.columns else pd.Series(None, index=rows.index)
    if "updated_at" in rows.columns:
        return rows["updated_at"].where(rows["updated_at"].notna(), created)
    return created


def time_holdout(frame: pd.DataFrame, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out the most recent ``fraction`` of the tickets, in time order (pure).

    Tickets without a timestamp cannot be placed in time: they always train.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"the holdout fraction must be between 0 and 1, got {fraction}")
    created = pd.to_datetime(frame[TicketColumn.CREATED_AT.value], utc=True, format="mixed", errors="coerce") \
        if TicketColumn.CREATED_AT.value in frame.columns else pd.Series(pd.NaT, index=frame.index)
    timed = created.notna()
    if timed.sum() < 2:
        raise ValueError(f"a time-ordered holdout needs at least 2 tickets with a timestamp, got {int(timed.sum())}")
    train, holdout = time_split(frame.loc[timed].assign(**{TicketColumn.CREATED_AT.value: created[timed]}), fraction)
    return pd.concat([frame.loc[~timed], frame.loc[train.index]]), frame.loc[holdout.index]


def split_for_retraining(
    frame: pd.DataFrame, fraction: float, task: str, seed: int = 42
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training part and holdout of a training set from ``build_training_set`` (pure).

    Corrected tickets always train: they are what retraining is for, and there are
    few of them. The holdout is the most recent ``fraction`` of the uncorrected
    tickets (``time_holdout``), so candidate and champion are compared on tickets
    no correction touched. History without any timestamps cannot be ordered in
    time: it is split stratified by label with ``seed`` instead.
    """
    corrected = frame[CORRECTED].astype(bool) if CORRECTED in frame.columns else pd.Series(False, index=frame.index)
    uncorrected = frame.loc[~corrected]
    if has_timestamps(uncorrected, at_least=2):
        train, holdout = time_holdout(uncorrected, fraction)
    else:
        train, holdout = stratified_split(uncorrected, task, fraction, seed)
    return pd.concat([train, frame.loc[corrected]]), holdout


def has_timestamps(frame: pd.DataFrame, at_least: int = 1) -> bool:
    column = TicketColumn.CREATED_AT.value
    if column not in frame.columns:
        return False
    return int(pd.to_datetime(frame[column], utc=True, format="mixed", errors="coerce").notna().sum()) >= at_least


@dataclass(frozen=True)
class CorrectionLedger:
    """Which corrections a model learnt from, for its MLflow run and model version."""

    task: str
    applied: pd.DataFrame  # correction_id, ticket_id, label: the corrections in the training part
    considered: int  # corrections of the task read from the store (superseded ones included)
    max_id: int | None  # the newest correction read: everything up to it was considered

    def tags(self) -> dict[str, str]:
        return {"corrections.count": str(len(self.applied)),
                "corrections.max_id": "none" if self.max_id is None else str(self.max_id)}

    def to_dict(self) -> dict:
        return {"task": self.task, "considered": self.considered, "max_id": self.max_id,
                "applied": [{"correction_id": None if pd.isna(r.correction_id) else int(r.correction_id),
                             "ticket_id": str(r.ticket_id), "label": str(r.label)}
                            for r in self.applied.itertuples(index=False)]}


def correction_ledger(corrections: pd.DataFrame, train: pd.DataFrame, task: str) -> CorrectionLedger:
    """The corrections that went into a model trained on ``train`` (a training part of ``build_training_set``)."""
    of_task = corrections[corrections["task"] == task] if len(corrections) else corrections
    used = train[train[CORRECTED].astype(bool)] if CORRECTED in train.columns else train.iloc[0:0]
    applied = pd.DataFrame({
        "correction_id": used[CORRECTION_ID].to_numpy() if CORRECTION_ID in used.columns else pd.NA,
        "ticket_id": used[TicketColumn.ID.value].astype(str).to_numpy(),
        "label": used[task].astype(str).to_numpy(),
    }).sort_values("correction_id", kind="stable", ignore_index=True)
    max_id = int(of_task[CORRECTION_ID].max()) if CORRECTION_ID in of_task.columns and len(of_task) else None
    return CorrectionLedger(task=task, applied=applied, considered=len(of_task), max_id=max_id)
