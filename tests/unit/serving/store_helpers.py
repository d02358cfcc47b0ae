"""Point the running in-process service at a store of the test's own (and back afterwards)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from serving.auth import KeyRing
from serving.recorder import InProcessWriter, PredictionRecorder
from store import Store

#: Nothing listens on port 1: connecting is refused at once, like a database that is down.
UNREACHABLE = "postgresql+psycopg://nightdesk:x@127.0.0.1:1/nightdesk"


@contextmanager
def service_store(service, url: str) -> Iterator[Store]:
    """The service's store, recorder and key ring replaced by fresh ones on ``url``."""
    store = Store(url)
    recorder = PredictionRecorder(InProcessWriter(store), retry_min_s=0.02, retry_max_s=0.1).start()
    keyring = KeyRing(store, refresh_s=3600)
    keyring.reload()
    keyring.miss_reload_s = 0.0
    saved = service.store, service.recorder, service.keyring
    service.store, service.recorder, service.keyring = store, recorder, keyring
    try:
        yield store
    finally:
        recorder.stop(timeout_s=2.0)
        service.store, service.recorder, service.keyring = saved
        store.close()


def wait_for(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
