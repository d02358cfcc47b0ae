"""Helper processes of the service: CPU-bound work that needs no web stack, off the process that answers HTTP.

The service's Python work holds the GIL: in one process, a bulk call's scoring,
routing and HTTP work and the background writes of its predictions take turns on
one core. ``serving.store_writer`` moves those writes (masking, SQL parameters, the
database's own work) into a child started with ``python -m MODULE``.

``WorkerProcess`` is the parent's handle: ``call`` sends a request and returns a
future of its answer; ``serve`` is the child's loop around a handler. Frames are an
8-byte length and a pickle, over the child's stdin and stdout; requests carry an
id. The child exits when its stdin closes, so it never outlives the service. If it
dies, pending calls fail with ``WorkerProcessError`` and it is started again on a
later call, at most once per ``restart_interval_s``.
"""

from __future__ import annotations

import itertools
import logging
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, BinaryIO

logger = logging.getLogger("nightdesk.serving")

_LENGTH = struct.Struct(">Q")
#: The directory that holds the ``serving`` package.
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


class WorkerProcessError(RuntimeError):
    """The helper process could not answer (not running, died, or its handler raised).

    ``kind`` is the name of the exception the handler raised, if it did.
    """

    def __init__(self, message: str, kind: str | None = None):
        super().__init__(message)
        self.kind = kind


class WorkerProcess:
    """A child ``python -m module`` answering ``call``s in order of arrival."""

    def __init__(self, module: str, *, env: dict[str, str] | None = None, restart_interval_s: float = 30.0):
        self.name = module.rsplit(".", 1)[-1]
        self._command = [sys.executable, "-m", module]
        # Secrets go in ``env``, never on the command line. The child finds this project's packages
        # wherever it is started from (a bento's working directory, a test's temporary one).
        self._env = {**os.environ, **(env or {}),
                     "PYTHONPATH": os.pathsep.join(filter(None, [str(_PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
        self._restart_interval_s = restart_interval_s
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._outbox: queue.SimpleQueue | None = None
        self._pending: dict[int, Future] = {}
        self._ids = itertools.count()
        self._started_at = float("-inf")
        self._closed = False

    def start(self) -> WorkerProcess:
        with self._lock:
            self._start_locked()
        return self

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def call(self, request: Any) -> Future:
        """Send ``request`` (pickled on the writer thread); the future gets the handler's answer."""
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise WorkerProcessError(f"the {self.name} process is closed")
            if not self.alive:
                if time.monotonic() - self._started_at < self._restart_interval_s:
                    raise WorkerProcessError(f"the {self.name} process is not running")
                self._start_locked()
            request_id = next(self._ids)
            self._pending[request_id] = future
            self._outbox.put((request_id, request))
        return future

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the child (it exits when its input closes); pending calls fail."""
        with self._lock:
            self._closed = True
            process, outbox = self._process, self._outbox
        if process is None:
            return
        outbox.put(None)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._fail_pending(process, f"the {self.name} process was closed")

    # ------------------------------------------------------------------ internals

    def _start_locked(self) -> None:
        self._started_at = time.monotonic()
        process = subprocess.Popen(self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=self._env)
        outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._process, self._outbox = process, outbox
        # Pickling and writing happen on a thread of their own: a write waits while the child is busy.
        threading.Thread(target=self._write, args=(process, outbox), name=f"nightdesk-{self.name}-writer",
                         daemon=True).start()
        threading.Thread(target=self._read, args=(process,), name=f"nightdesk-{self.name}-reader",
                         daemon=True).start()
        logger.info("%s process started (pid %d)", self.name, process.pid)

    def _write(self, process: subprocess.Popen, outbox: queue.SimpleQueue) -> None:
        while (item := outbox.get()) is not None:
            try:
                write_frame(process.stdin, item)
            except (OSError, ValueError):  # the child is gone; the reader fails what is pending
                break
            except Exception as error:  # e.g. something that cannot be pickled
                self._settle(item[0], error=WorkerProcessError(f"could not send the request: {error}"))
        try:
            process.stdin.close()
        except OSError:
            pass

    def _read(self, process: subprocess.Popen) -> None:
        try:
            while (message := read_frame(process.stdout)) is not None:
                request_id, ok, payload = message
                if ok:
                    self._settle(request_id, result=payload)
                else:
                    kind, text = payload
                    self._settle(request_id, error=WorkerProcessError(text, kind))
        except Exception:
            logger.exception("reading from the %s process failed", self.name)
        code = process.wait()
        if not self._closed:
            logger.error("%s process %d exited with %s; it is started again on a later call",
                         self.name, process.pid, code)
        self._fail_pending(process, f"the {self.name} process exited with {code}")

    def _settle(self, request_id: int, result: Any = None, error: BaseException | None = None) -> None:
        with self._lock:
            future = self._pending.pop(request_id, None)
        if future is None or future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def _fail_pending(self, process: subprocess.Popen, reason: str) -> None:
        with self._lock:
            if process is not self._process:
                return  # a newer child took over; its calls are its own
            pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(WorkerProcessError(reason))


# ---------------------------------------------------------------------- the wire


def write_frame(stream: BinaryIO, message: Any) -> None:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def read_frame(stream: BinaryIO) -> Any | None:
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(header)
    payload = stream.read(length)
    if len(payload) < length:
        return None
    return pickle.loads(payload)


# ---------------------------------------------------------------------- the child


def serve(handle: Callable[[Any], Any], requests: BinaryIO, answers: BinaryIO) -> None:
    """The child's loop: answer each request with ``handle``, until the input closes.

    A handler's exception is answered (its class name and message), not fatal.
    """
    while (message := read_frame(requests)) is not None:
        request_id, request = message
        try:
            result = handle(request)
        except Exception as error:
            write_frame(answers, (request_id, False, (type(error).__name__, f"{type(error).__name__}: {error}")))
        else:
            write_frame(answers, (request_id, True, result))


def run_child(handle: Callable[[Any], Any]) -> None:
    """``serve`` on stdin/stdout (only frames may go to stdout: prints go to stderr)."""
    answers = sys.stdout.buffer
    sys.stdout = sys.stderr
    serve(handle, sys.stdin.buffer, answers)
