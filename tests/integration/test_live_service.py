"""The end-to-end tests' server helper leaves nothing running: BentoML's workers live in process
groups of their own, so stopping the server must reach them by PID."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from live_service import PROJECT, free_port, fresh_database, running_service, stop_server_tree

pytestmark = pytest.mark.integration


def _server_tree(base: str) -> list[psutil.Process]:
    port = int(base.rsplit(":", 1)[1])
    listeners = [c.pid for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port and c.pid]
    root = psutil.Process(listeners[0])
    while root.parent() is not None and "bentoml" in " ".join(root.parent().cmdline()):
        root = root.parent()
    return [root, *root.children(recursive=True)]


def test_a_stopped_service_leaves_no_worker_behind(trained_registry, tmp_path):
    home = trained_registry.copy_to(tmp_path / "home").home
    (tmp_path / "logs").mkdir()
    with fresh_database("sqlite", tmp_path) as database_url:
        with running_service(home, database_url, tmp_path / "logs") as base:
            assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
            tree = _server_tree(base)
            assert len(tree) >= 2  # the arbiter and at least one worker
    assert not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_a_server_that_ignores_sigterm_is_killed_with_its_children(tmp_path):
    """The SIGKILL fallback: a parent that ignores SIGTERM and a child in a process group of its own."""
    script = tmp_path / "stubborn.py"
    script.write_text(
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'],"
        " start_new_session=True)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(600)\n")
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                               start_new_session=True, cwd=Path(PROJECT))
    child = psutil.Process(int(process.stdout.readline()))
    assert not stop_server_tree(process, timeout_s=1)  # it had to be killed
    assert process.returncode is not None
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    assert free_port()  # the helper module still works after the kill
