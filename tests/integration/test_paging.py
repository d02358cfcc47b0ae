"""The on-call pager (serving/paging.py) against a real HTTP receiver on loopback.

The receiver answers from a script (status, headers, delay) per request and records
what arrived and when, so retries, backoff, Retry-After and the payload are checked
on the wire. Backoffs are a few tens of milliseconds to keep the module fast.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from serving.paging import BackgroundPager, Pager, PageRequest, pager_from_settings, retry_after_seconds

pytestmark = pytest.mark.integration

BACKOFF = 0.05


@dataclass
class Reply:
    status: int = 202
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (to trigger client timeouts)


@dataclass
class Receiver:
    """A webhook on 127.0.0.1 that answers the scripted replies in order (the last one repeats)."""

    script: list[Reply]
    received: list[tuple[float, dict, dict]] = field(default_factory=list)  # (monotonic time, body, headers)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v2/enqueue"

    def gaps(self) -> list[float]:
        times = [t for t, _, _ in self.received]
        return [later - earlier for earlier, later in zip(times, times[1:])]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(script=[Reply()])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.received.append((time.monotonic(), body, dict(self.headers)))
            reply = state.script[min(len(state.received), len(state.script)) - 1]
            if reply.delay:
                time.sleep(reply.delay)
            payload = json.dumps({"status": "success" if reply.status < 300 else "error"}).encode()
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                pass

        def log_message(self, *args):  # keep pytest output clean
            pass

    state.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.server.block_on_close = False  # a handler still sleeping for a timed-out client need not be awaited
    thread = threading.Thread(target=state.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state
    state.server.shutdown()
    state.server.server_close()
    thread.join(timeout=5)


def ticket_page(ticket_id: str = "T-1001") -> PageRequest:
    return PageRequest(ticket_id=ticket_id, summary="P1 security: someone accessed our account", severity="critical",
                       custom_details={"queue": "security", "priority": "P1", "team": "EMEA"})


def failure_lines(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []


def test_retries_on_500_then_honours_retry_after_on_429_then_delivers(receiver, tmp_path):
    receiver.script = [Reply(500), Reply(429, {"Retry-After": "1"}), Reply(202)]
    log = tmp_path / "failures.jsonl"
    pager = Pager(receiver.url, timeout=2, max_attempts=4, backoff=BACKOFF, routing_key="R0UTING", failure_log=log)

    result = pager.page(ticket_page())

    assert result.delivered and result.status_code == 202
    assert [a.status_code for a in result.attempts] == [500, 429, 202]
    assert len(receiver.received) == 3
    first_gap, second_gap = receiver.gaps()
    assert BACKOFF <= first_gap < 1.0  # exponential backoff's first pause, not the Retry-After
    assert second_gap >= 1.0  # the receiver's Retry-After wins over the 2 x 0.05 s backoff
    assert not log.exists()  # nothing failed


def test_event_has_the_pagerduty_shape(receiver):
    pager = Pager(receiver.url, timeout=2, routing_key="R0UTING")
    assert pager.page(ticket_page("T-42")).delivered
    _, body, headers = receiver.received[0]
    assert headers["Content-Type"] == "application/json"
    assert body == {
        "routing_key": "R0UTING",
        "event_action": "trigger",
        "dedup_key": "T-42",
        "payload": {
            "summary": "P1 security: someone accessed our account",
            "severity": "critical",
            "source": "nightdesk",
            "custom_details": {"queue": "security", "priority": "P1", "team": "EMEA"},
        },
    }


def test_a_page_that_never_gets_through_is_recorded_not_raised(receiver, tmp_path):
    import prometheus_client

    receiver.script = [Reply(503)]
    log = tmp_path / "paging" / "failures.jsonl"
    pager = Pager(receiver.url, timeout=2, max_attempts=3, backoff=BACKOFF, routing_key="SECRET-KEY", failure_log=log)
    before = prometheus_client.REGISTRY.get_sample_value("nightdesk_page_failures_total", {"reason": "http_5xx"}) or 0

    result = pager.page(ticket_page("T-7"))

    assert not result.delivered and result.status_code == 503
    assert len(receiver.received) == 3 and "after 3 attempts" in result.error
    gaps = receiver.gaps()
    assert gaps[0] >= BACKOFF and gaps[1] >= 2 * BACKOFF  # doubling
    (line,) = failure_lines(log)
    assert line["ticket_id"] == "T-7" and len(line["attempts"]) == 3
    assert line["event"]["dedup_key"] == "T-7" and "SECRET-KEY" not in json.dumps(line)
    after = prometheus_client.REGISTRY.get_sample_value("nightdesk_page_failures_total", {"reason": "http_5xx"})
    assert after == before + 1

    pager.page(ticket_page("T-8"))  # the log is appended to, never rewritten
    assert [entry["ticket_id"] for entry in failure_lines(log)] == ["T-7", "T-8"]


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_other_client_errors_are_not_retried(receiver, tmp_path, status):
    receiver.script = [Reply(status), Reply(202)]
    log = tmp_path / "failures.jsonl"
    result = Pager(receiver.url, timeout=2, max_attempts=4, backoff=BACKOFF, failure_log=log).page(ticket_page())
    assert not result.delivered and result.status_code == status
    assert len(receiver.received) == 1 and "not retried" in result.error
    assert len(failure_lines(log)) == 1


def test_unreachable_webhook_is_retried_then_recorded(tmp_path):
    with socket.socket() as probe:  # a free port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "failures.jsonl"
    result = Pager(f"http://127.0.0.1:{port}/hook", timeout=1, max_attempts=3, backoff=BACKOFF,
                   failure_log=log).page(ticket_page())
    assert not result.delivered and result.status_code is None
    assert len(result.attempts) == 3 and all("Connect" in a.error for a in result.attempts)
    assert len(failure_lines(log)) == 1


def test_a_slow_receiver_times_out_and_is_retried(receiver):
    receiver.script = [Reply(202, delay=1.0), Reply(202)]
    result = Pager(receiver.url, timeout=0.3, max_attempts=3, backoff=BACKOFF).page(ticket_page())
    assert result.delivered and len(result.attempts) == 2
    assert "Timeout" in result.attempts[0].error


def test_background_pager_answers_at_once_and_pages_later(receiver, tmp_path):
    receiver.script = [Reply(202, delay=0.3)]
    background = BackgroundPager(Pager(receiver.url, timeout=2, backoff=BACKOFF))
    try:
        started = time.monotonic()
        future = background.submit(ticket_page("T-9"))
        assert time.monotonic() - started < 0.1  # the request path does not wait for the webhook
        assert future.result(timeout=5).delivered
        assert receiver.received[0][1]["dedup_key"] == "T-9"
    finally:
        background.close()


def test_background_pager_refuses_and_records_beyond_its_queue(receiver, tmp_path):
    receiver.script = [Reply(202, delay=0.3)]
    log = tmp_path / "failures.jsonl"
    background = BackgroundPager(Pager(receiver.url, timeout=2, backoff=BACKOFF, failure_log=log), max_pending=1)
    try:
        first = background.submit(ticket_page("T-1"))
        refused = background.submit(ticket_page("T-2")).result(timeout=1)
        assert not refused.delivered and "queue full" in refused.error
        assert first.result(timeout=5).delivered
        assert [entry["ticket_id"] for entry in failure_lines(log)] == ["T-2"]
    finally:
        background.close()


def test_pager_from_settings(tmp_path, monkeypatch, receiver):
    from serving.settings import ServingSettings

    monkeypatch.chdir(tmp_path)
    assert pager_from_settings(ServingSettings(_env_file=None, home=tmp_path)) is None  # no webhook: paging off
    monkeypatch.setenv("NIGHTDESK_SERVING_PAGING_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("NIGHTDESK_SERVING_PAGING_ROUTING_KEY", "from-env")
    monkeypatch.setenv("NIGHTDESK_SERVING_PAGING_MAX_ATTEMPTS", "2")
    background = pager_from_settings(ServingSettings(_env_file=None, home=tmp_path))
    try:
        assert background.pager.max_attempts == 2
        assert background.pager.failure_log == tmp_path.resolve() / "paging" / "failures.jsonl"
        assert background.submit(ticket_page()).result(timeout=5).delivered
        assert receiver.received[0][1]["routing_key"] == "from-env"
    finally:
        background.close()


def test_retry_after_accepts_seconds_and_http_dates():
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == pytest.approx(10.0)
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_bad_pager_configuration_is_refused():
    with pytest.raises(ValueError, match="http:// or https://"):
        Pager("ftp://example.org/hook")
    with pytest.raises(ValueError, match="max_attempts"):
        Pager("http://127.0.0.1:9/hook", max_attempts=0)
