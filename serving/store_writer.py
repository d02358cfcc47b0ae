"""The recorder's database writes, in a process of their own (see ``serving.worker_process``).

``PredictionRecorder`` keeps everything that decides what happens to a prediction
(its buffer, batching, retries, ``failing`` and the gauges) in the service;
``StoreWriterProcess`` is where it sends its batches, and the child does the rest:
reading the answers' JSON into table rows (``serving.recorder.prediction_rows``),
masking the text, the SQL parameters and the database's own work. A batch of 500 costs
the service only pickling tuples and the bytes of the answers it sent anyway.

The store's errors keep their meaning: ``StoreUnavailable`` in the child (or no child
to ask) is ``StoreUnavailable`` here, so the recorder buffers and retries as before;
the child is started again on the next attempt after ``restart_interval_s``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import TimeoutError as FutureTimeout

from serving.recorder import ServedPrediction, rows_of
from serving.worker_process import WorkerProcess, WorkerProcessError, run_child
from store import StoreUnavailable

#: The child reads its database URL from here (the environment, not the command line: it may hold a password).
URL_VARIABLE = "NIGHTDESK_STORE_WRITER_URL"


class StoreWriterProcess:
    """The recorder's writer: served predictions stored in the ``store.Store`` at ``url`` by a child process."""

    def __init__(self, url: str, *, timeout_s: float = 60.0, restart_interval_s: float = 1.0):
        self.worker = WorkerProcess("serving.store_writer", env={URL_VARIABLE: url},
                                    restart_interval_s=restart_interval_s)
        self.timeout_s = timeout_s

    def start(self) -> StoreWriterProcess:
        self.worker.start()
        return self

    def record_predictions(self, served: Iterable[ServedPrediction]) -> int:
        """Store the predictions (ids already stored are skipped); returns how many were new."""
        try:
            return self.worker.call(list(served)).result(timeout=self.timeout_s)
        except FutureTimeout:
            raise StoreUnavailable(f"the store writer did not answer within {self.timeout_s:.0f} s") from None
        except WorkerProcessError as error:
            if error.kind in (None, StoreUnavailable.__name__):  # no child, or the database is down
                raise StoreUnavailable(str(error)) from None
            raise RuntimeError(str(error)) from None

    def close(self, timeout_s: float = 2.0) -> None:
        self.worker.close(timeout_s)


class StoreWriter:
    """The child's side: one store, opened on first use, storing each batch of served predictions it is sent."""

    def __init__(self, url: str):
        self.url = url
        self._store = None

    def __call__(self, served: list[ServedPrediction]) -> int:
        if self._store is None:
            from store import Store

            self._store = Store(self.url, migrate=False)
        return self._store.record_predictions(rows_of(served))


if __name__ == "__main__":
    run_child(StoreWriter(os.environ[URL_VARIABLE]))
