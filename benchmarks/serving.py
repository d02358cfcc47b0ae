"""Serving benchmark: latency, throughput, bulk rate, memory and cold start of `bentoml serve`.

    python benchmarks/serving.py [--home DIR] [--rows 1500]

Without --home it trains the three default models on the generated sample in a
temporary NIGHTDESK_HOME. Loopback only. Writes the section between
<!-- serving:start --> and <!-- serving:end --> of docs/benchmarks.md (other
sections of that file belong to other scripts and are left alone).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd

PROJECT = Path(__file__).resolve().parents[1]
DOC = PROJECT / "docs" / "benchmarks.md"
START, END = "<!-- serving:start -->", "<!-- serving:end -->"
COLUMNS = ["id", "subject", "body", "channel", "customer_tier", "language", "created_at", "customer_timezone"]


def train_registry(home: Path, rows: int) -> pd.DataFrame:
    from training.config import load_config
    from training.sample import generate_tickets
    from training.settings import NightdeskSettings
    from training.workflows import promote_task, train_task

    os.environ["NIGHTDESK_HOME"] = str(home)
    settings = NightdeskSettings(_env_file=None, home=home, MLFLOW_TRACKING_URI=None, MLFLOW_REGISTRY_URI=None)
    frame = generate_tickets(rows, seed=0)
    for task in ("urgency", "category", "sentiment"):
        config = load_config(task)
        train_task(frame, task, config, settings)
        promote_task(task, config, settings, None)
    return frame


def payloads(frame: pd.DataFrame) -> list[dict]:
    records = frame[COLUMNS].to_dict("records")
    return [{k: (v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in r.items() if not pd.isna(v)}
            for r in records]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(home: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(NIGHTDESK_HOME=str(home), MLFLOW_DISABLE_TELEMETRY="true")
    bentoml = Path(sys.executable).with_name("bentoml")
    return subprocess.Popen([str(bentoml), "serve", "serving.service:Nightdesk", "--host", "127.0.0.1",
                             "--port", str(port)], cwd=PROJECT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def first_answer(base: str, ticket: dict, process: subprocess.Popen, timeout_s: float = 180) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.post(f"{base}/predict", json=ticket, timeout=10).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("no answer before the timeout")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def sequential_latency(base: str, tickets: list[dict], count: int) -> tuple[float, float]:
    timings = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for ticket in tickets[:20]:
            client.post("/predict", json=ticket)  # warm-up
        for i in range(count):
            started = time.perf_counter()
            response = client.post("/predict", json=tickets[i % len(tickets)])
            timings.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return percentile(timings, 0.5), percentile(timings, 0.99)


async def throughput(base: str, tickets: list[dict], concurrency: int, total: int) -> tuple[float, int, float]:
    errors = 0
    timings: list[float] = []
    queue = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        async def worker():
            nonlocal errors
            for i in queue:
                started = time.perf_counter()
                response = await client.post("/predict", json=tickets[i % len(tickets)])
                timings.append((time.perf_counter() - started) * 1000)
                errors += response.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return total / elapsed, errors, percentile(timings, 0.99)


def bulk_rate(base: str, tickets: list[dict], batch: int) -> float:
    with httpx.Client(base_url=base, timeout=300) as client:
        client.post("/predict_batch", json={"tickets": tickets[:batch]}).raise_for_status()
        started = time.perf_counter()
        for i in range(0, len(tickets), batch):
            client.post("/predict_batch", json={"tickets": tickets[i:i + batch]}).raise_for_status()
        return len(tickets) / (time.perf_counter() - started)


def in_process_rate(home: Path, frame: pd.DataFrame) -> float:
    import mlflow

    from features.predictor import to_model_input

    uri = f"sqlite:///{home / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    models = [mlflow.pyfunc.load_model(f"models:/nightdesk-{t}@champion") for t in ("urgency", "category", "sentiment")]
    model_input = to_model_input(frame[COLUMNS])
    for model in models:
        model.predict(model_input.head(50))
    started = time.perf_counter()
    for model in models:
        model.predict(model_input)
    return len(frame) / (time.perf_counter() - started)


def tree_rss_mib(pid: int) -> float:
    import psutil

    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


def write_section(text: str) -> None:
    DOC.parent.mkdir(parents=True, exist_ok=True)
    current = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    section = f"{START}\n{text.rstrip()}\n{END}"
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    updated = pattern.sub(lambda _: section, current) if pattern.search(current) else current.rstrip() + "\n\n" + section + "\n"
    DOC.write_text(updated)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="A NIGHTDESK_HOME whose three tasks have champions.")
    parser.add_argument("--rows", type=int, default=1500, help="Sample size to train on (without --home).")
    parser.add_argument("--requests", type=int, default=500, help="Sequential requests for latency.")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from training.sample import generate_tickets

    with tempfile.TemporaryDirectory() as scratch:
        home = args.home or Path(scratch) / "home"
        if args.home is None:
            print("training the three default models ...", file=sys.stderr)
            train_registry(home, args.rows)
        frame = generate_tickets(2000, seed=123)  # unseen tickets
        tickets = payloads(frame)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        process = start_server(home, port)
        try:
            cold = first_answer(base, tickets[0], process)
            print(f"cold start {cold:.1f} s", file=sys.stderr)
            p50, p99 = sequential_latency(base, tickets, args.requests)
            print(f"latency p50 {p50:.1f} ms p99 {p99:.1f} ms", file=sys.stderr)
            rates = {c: asyncio.run(throughput(base, tickets, c, n)) for c, n in ((1, 200), (8, 400), (32, 800))}
            for c, (rate, errors, tail) in rates.items():
                print(f"concurrency {c}: {rate:.1f}/s errors {errors} p99 {tail:.0f} ms", file=sys.stderr)
            bulk = bulk_rate(base, tickets, 500)
            rss = tree_rss_mib(process.pid)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        local = in_process_rate(home, frame)

    import psutil

    lines = [
        "## Serving (`benchmarks/serving.py`)",
        "",
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.node()}: {psutil.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, Python {platform.python_version()}, "
        f"load average at start {os.getloadavg()[0]:.1f} (shared machine). "
        "`bentoml serve serving.service:Nightdesk` on 127.0.0.1 with the three default models "
        "(trained on the generated sample); tickets are 2,000 unseen generated ones.",
        "",
        "| measure | result | goal |",
        "|---|---|---|",
        f"| `/predict` latency, {args.requests} sequential requests | p50 {p50:.1f} ms, p99 {p99:.1f} ms "
        "| p50 <= 10 ms, p99 <= 30 ms |",
    ]
    for c, (rate, errors, tail) in rates.items():
        lines.append(f"| `/predict` throughput, concurrency {c} | {rate:.1f} req/s, {errors} errors, p99 {tail:.0f} ms "
                     "| zero errors |")
    lines += [
        f"| `/predict_batch` (500 per call) vs in-process pyfunc | {bulk:.0f} vs {local:.0f} tickets/s "
        f"({bulk / local:.0%}) | >= 50% |",
        f"| resident memory, server process tree | {rss:.0f} MiB | <= 1024 MiB |",
        f"| cold start, launch to first answer | {cold:.1f} s | |",
    ]
    write_section("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
