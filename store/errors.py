"""What the store raises: the service turns these into 503, 404 and 422 answers."""

from __future__ import annotations


class StoreError(Exception):
    """Base of the store's errors."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or is busy; nothing was written. Try again later."""


class PredictionNotFound(StoreError, LookupError):
    """A correction names a prediction (or a ticket) the store has no record of."""

    def __init__(self, missing: list[dict]):
        self.missing = missing  # [{"index": i, "prediction_id" | "ticket_id": ...}]
        names = ", ".join(f"{k}={v!r}" for item in missing for k, v in item.items() if k != "index")
        super().__init__(f"no recorded prediction for {names}")


class InvalidCorrection(StoreError, ValueError):
    """A correction's task or label does not fit the prediction it corrects; nothing was written."""

    def __init__(self, problems: list[dict]):
        self.problems = problems  # [{"index": i, "field": ..., "message": ..., "allowed": [...]}]
        super().__init__("; ".join(p["message"] for p in problems))
