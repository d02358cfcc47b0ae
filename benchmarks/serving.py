"""Serving benchmark: latency, throughput, bulk rate, memory, cold start and shutdown of `bentoml serve`.

    python benchmarks/serving.py [--home DIR] [--rows 1500]

Without --home it trains the three default models on the generated sample in a
temporary NIGHTDESK_HOME. Loopback only. Writes the section between
<!-- serving:start --> and <!-- serving:end --> of docs/benchmarks.md (other
sections of that file belong to other scripts and are left alone).

BentoML runs each worker in a process group of its own, so the server is
stopped through its arbiter (SIGTERM, which stops the workers) and, should that
hang, every process of the tree is killed by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import re
import signal
import socket
import statistics
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
                try:
                    response = await client.post("/predict", json=tickets[i % len(tickets)])
                    errors += response.status_code != 200
                except httpx.HTTPError:  # a timeout or a dropped connection is an error, not a crash
                    errors += 1
                timings.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return total / elapsed, errors, percentile(timings, 0.99)


def batch_counter(base: str) -> tuple[float, float]:
    """(tickets scored, model calls) so far, from the service's batch-size histogram."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    values = {}
    for name in ("sum", "count"):
        found = re.search(rf"^nightdesk_scoring_batch_size_{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M)
        values[name] = float(found.group(1)) if found else 0.0
    return values["sum"], values["count"]


def bulk_rate(base: str, tickets: list[dict], batch: int, passes: int = 3) -> tuple[float, dict[str, int]]:
    """Median tickets/s of ``passes`` passes of sequential /predict_batch calls of ``batch`` tickets, and the
    routing actions answered (off shift, acknowledgements are drafted with help-article links, which
    costs more than assign_now).

    The request bodies are encoded before the clock starts, as the in-process baseline's input frame is
    built before its clock starts: both clocks time the scoring side, not the caller preparing its input.
    """
    actions: dict[str, int] = {}
    rates = []
    bodies = [json.dumps({"tickets": tickets[i:i + batch]}).encode() for i in range(0, len(tickets), batch)]
    headers = {"content-type": "application/json"}
    with httpx.Client(base_url=base, timeout=300) as client:
        # Warm up with the last call, not the first: scoring remembers its last batch, and a pass that
        # began with the batch just scored would skip cleaning and tokenizing it.
        client.post("/predict_batch", content=bodies[-1], headers=headers).raise_for_status()
        for _ in range(passes):
            started = time.perf_counter()
            answers = []
            for body in bodies:
                response = client.post("/predict_batch", content=body, headers=headers)
                response.raise_for_status()
                answers.append(response)
            rates.append(len(tickets) / (time.perf_counter() - started))
    rate = statistics.median(rates)
    for response in answers:
        for answer in response.json()["predictions"]:
            action = answer["routing"].get("action") or "none"
            actions[action] = actions.get(action, 0) + 1
    return rate, actions


def in_process_rates(home: Path, seen: pd.DataFrame, frame: pd.DataFrame, batches: tuple[int, ...],
                     passes: int = 3) -> dict[int, tuple[float, float]]:
    """Tickets/s of the three registered pyfunc models' ``predict`` on ``frame``, one call per model for
    each ``batch`` tickets (``len(frame)``: all in one call): (cold, warm) per batch size.

    Warm: after one pass over the ``seen`` tickets (as the service saw them before its
    bulk run), the median of ``passes`` passes over ``frame``. Cold: the first pass over
    ``frame`` with nothing remembered (``forget_scored_words``). Before every pass the
    remembered last batch is dropped (``forget_recent_batches``): scoring the very batch
    scored just before would skip cleaning and tokenizing, which no bulk caller sees.
    """
    import mlflow

    from features.predictor import to_model_input
    from features.transformers import forget_recent_batches, forget_scored_words

    uri = f"sqlite:///{home / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    models = [mlflow.pyfunc.load_model(f"models:/nightdesk-{t}@champion") for t in ("urgency", "category", "sentiment")]
    seen_input, model_input = to_model_input(seen[COLUMNS]), to_model_input(frame[COLUMNS])
    for model in models:
        model.predict(model_input.head(50))

    def one_pass(tickets: pd.DataFrame, step: int) -> float:
        forget_recent_batches()
        started = time.perf_counter()
        for start in range(0, len(tickets), step):
            chunk = tickets.iloc[start:start + step]
            for model in models:
                model.predict(chunk)
        return len(tickets) / (time.perf_counter() - started)

    rates = {}
    for batch in batches:
        forget_scored_words()
        cold = one_pass(model_input, batch)
        forget_scored_words()
        one_pass(seen_input, batch)
        rates[batch] = (cold, statistics.median(one_pass(model_input, batch) for _ in range(passes)))
    return rates


def routing_by_clock(home: Path, frame: pd.DataFrame, moments: dict[str, dt.datetime],
                     passes: int = 3) -> dict[str, tuple[float, float]]:
    """In-process routing of ``frame``'s tickets as one batch (``route_all``, as ``/predict_batch`` routes
    them) with the policy's clock at each of ``moments``: (median us per ticket, share with a drafted
    acknowledgement). Who is on shift decides how much work the policy does: off shift, a ticket's
    acknowledgement is drafted with help articles searched for it. The collector is set as the
    service sets it (what is loaded frozen, ``GC_THRESHOLDS``)."""
    import gc

    from pydantic import TypeAdapter

    from serving.models import load_model_set
    from serving.routing import load_routing_policy, route_all
    from serving.schemas import TicketIn
    from serving.scoring import score_tickets
    from serving.service import GC_THRESHOLDS
    from serving.settings import ServingSettings

    settings = ServingSettings(home=home, _env_file=None)
    models = load_model_set(settings)
    tickets = TypeAdapter(list[TicketIn]).validate_python(payloads(frame))
    predictions = [scored.predictions for scored in score_tickets(tickets, models.loaded(), models.tasks)]
    router = load_routing_policy(settings.serving_policy_file, settings.kb_index_path)
    costs = {}
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        for name, moment in moments.items():
            router.clock = lambda moment=moment: moment
            route_all(router, tickets, predictions)  # the first call fills the calendars' day caches
            times = []
            for _ in range(passes):
                started = time.perf_counter()
                routings = route_all(router, tickets, predictions)
                times.append((time.perf_counter() - started) / len(tickets) * 1e6)
            drafted = sum(routing.acknowledgement is not None for routing in routings) / len(routings)
            costs[name] = (statistics.median(times), drafted)
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
    return costs


def clock_moments(now: dt.datetime) -> dict[str, dt.datetime]:
    """The run's own clock, and 12:30 UTC on the Tuesday and the Saturday of its week."""
    monday = (now - dt.timedelta(days=now.weekday())).replace(hour=12, minute=30, second=0, microsecond=0)
    return {f"the run's clock ({now:%a %H:%M})": now, "Tue 12:30": monday + dt.timedelta(days=1),
            "Sat 12:30": monday + dt.timedelta(days=5)}


def process_role(process) -> str:
    command = " ".join(process.cmdline())
    if "serving.store_writer" in command:
        return "store writer"
    return "worker" if "worker" in command else "arbiter"


def cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds used so far by each process of the server tree, by role."""
    used: dict[str, float] = {}
    for process in server_tree(pid):
        role, times = process_role(process), process.cpu_times()
        used[role] = used.get(role, 0.0) + times.user + times.system
    return used


def tree_rss_by_role(pid: int) -> dict[str, float]:
    sizes: dict[str, float] = {}
    for process in server_tree(pid):
        role = process_role(process)
        sizes[role] = sizes.get(role, 0.0) + process.memory_info().rss / 2**20
    return sizes


def server_tree(pid: int) -> list:
    import psutil

    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def tree_rss_mib(pid: int) -> float:
    return sum(p.memory_info().rss for p in server_tree(pid)) / 2**20


def stop_server(process: subprocess.Popen, timeout_s: float = 60) -> float:
    """SIGTERM to the arbiter; seconds until the whole tree is gone (inf if it had to be killed)."""
    import psutil

    tree = server_tree(process.pid)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(tree, timeout=timeout_s)
    elapsed = time.monotonic() - started
    for leftover in alive:
        leftover.kill()
    process.wait()
    return elapsed if not alive else float("inf")


def shutdown_under_load(base: str, tickets: list[dict], process: subprocess.Popen) -> float:
    """Seconds from SIGTERM to a stopped server while 16 clients keep sending /predict."""
    import threading

    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=base, timeout=30) as session:
            for i in range(10**9):
                if stop.is_set():
                    return
                try:
                    session.post("/predict", json=tickets[i % len(tickets)])
                except httpx.HTTPError:
                    pass

    clients = [threading.Thread(target=client, daemon=True) for _ in range(16)]
    for thread in clients:
        thread.start()
    time.sleep(2)
    try:
        return stop_server(process)
    finally:
        stop.set()


def write_section(text: str) -> None:
    DOC.parent.mkdir(parents=True, exist_ok=True)
    current = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    section = f"{START}\n{text.rstrip()}\n{END}"
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    updated = pattern.sub(lambda _: section, current) if pattern.search(current) else current.rstrip() + "\n\n" + section + "\n"
    DOC.write_text(updated)


def main() -> None:
    # Run as a script, this file's folder is on the path and its name would shadow the service's
    # package (``routing_by_clock`` imports it): take the folder off; nothing here imports a sibling.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="A NIGHTDESK_HOME whose three tasks have champions.")
    parser.add_argument("--rows", type=int, default=1500, help="Sample size to train on (without --home).")
    parser.add_argument("--requests", type=int, default=500, help="Sequential requests for latency.")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    load_at_start = os.getloadavg()[0]
    from training.sample import generate_tickets

    with tempfile.TemporaryDirectory() as scratch:
        home = args.home or Path(scratch) / "home"
        if args.home is None:
            print("training the three default models ...", file=sys.stderr)
            train_registry(home, args.rows)
        frame = generate_tickets(2000, seed=123)  # unseen tickets
        tickets = payloads(frame)
        bulk_frame = generate_tickets(2000, seed=321)  # tickets the bulk runs meet first
        bulk_tickets = payloads(bulk_frame)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        process = start_server(home, port)
        try:
            cold = first_answer(base, tickets[0], process)
            print(f"cold start {cold:.1f} s", file=sys.stderr)
            p50, p99 = sequential_latency(base, tickets, args.requests)
            print(f"latency p50 {p50:.1f} ms p99 {p99:.1f} ms", file=sys.stderr)
            rates = {}
            for concurrency, total in ((1, 200), (8, 800), (32, 1600)):
                before = batch_counter(base)
                rate, errors, tail = asyncio.run(throughput(base, tickets, concurrency, total))
                after = batch_counter(base)
                per_call = (after[0] - before[0]) / max(1.0, after[1] - before[1])
                rates[concurrency] = (rate, errors, tail, per_call)
                print(f"concurrency {concurrency}: {rate:.1f}/s errors {errors} p99 {tail:.0f} ms, "
                      f"{per_call:.1f} tickets per model call", file=sys.stderr)
            load_at_bulk = os.getloadavg()[0]
            cpu_before, bulk_started = cpu_seconds(process.pid), time.perf_counter()
            bulk, actions = bulk_rate(base, bulk_tickets, 500)
            bulk_wall = time.perf_counter() - bulk_started
            bulk_cpu = {role: used - cpu_before.get(role, 0.0) for role, used in cpu_seconds(process.pid).items()}
            bulk_1000, _ = bulk_rate(base, bulk_tickets, 1000)
            print(f"bulk {bulk:.0f}/s (500 per call), {bulk_1000:.0f}/s (1000 per call); actions {actions}",
                  file=sys.stderr)
            rss_by_role = tree_rss_by_role(process.pid)
            rss = sum(rss_by_role.values())
            shutdown = shutdown_under_load(base, tickets, process)
            print(f"shutdown under load {shutdown:.1f} s", file=sys.stderr)
        finally:
            if process.poll() is None:
                stop_server(process)
        local = in_process_rates(home, frame, bulk_frame, (len(bulk_frame), 500, 1000))
        routing_costs = routing_by_clock(home, bulk_frame, clock_moments(dt.datetime.now(dt.UTC)))
    (cold_all, warm_all), (cold_500, warm_500), (cold_1000, warm_1000) = (local[n] for n in (len(bulk_frame), 500, 1000))

    import psutil

    run_at = dt.datetime.now(dt.UTC)
    lines = [
        "## Serving (`benchmarks/serving.py`)",
        "",
        f"Run {run_at:%Y-%m-%d %H:%M} UTC on {platform.node()}: {psutil.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, Python {platform.python_version()}, "
        f"load average at start {load_at_start:.1f} (shared machine). "
        "`bentoml serve serving.service:Nightdesk` on 127.0.0.1 with the three default models "
        "(trained on the generated sample); tickets are 2,000 unseen generated ones.",
        "",
        "| measure | result | goal |",
        "|---|---|---|",
        f"| `/predict` latency, {args.requests} sequential requests | p50 {p50:.1f} ms, p99 {p99:.1f} ms "
        "| p50 <= 10 ms, p99 <= 30 ms |",
    ]
    for c, (rate, errors, tail, per_call) in rates.items():
        lines.append(f"| `/predict` throughput, concurrency {c} | {rate:.1f} req/s, {errors} errors, p99 {tail:.0f} ms, "
                     f"{per_call:.1f} tickets per model call | zero errors |")
    lines += [
        f"| `/predict_batch` vs in-process pyfunc, the same 2,000 tickets in calls of 500 | {bulk:.0f} vs "
        f"{warm_500:.0f} ({cold_500:.0f}) tickets/s ({bulk / warm_500:.0%}) | >= 50% |",
        f"| the same in calls of 1,000 (the endpoint's limit) | {bulk_1000:.0f} vs {warm_1000:.0f} "
        f"({cold_1000:.0f}) tickets/s ({bulk_1000 / warm_1000:.0%}) | >= 50% |",
        f"| `/predict_batch` (500 / 1,000 per call) vs in-process pyfunc with all 2,000 in one call "
        f"| {bulk:.0f} / {bulk_1000:.0f} vs {warm_all:.0f} tickets/s ({bulk / warm_all:.0%} / "
        f"{bulk_1000 / warm_all:.0%}) | none: no call to the endpoint can be this big |",
        f"| resident memory, server process tree | {rss:.0f} MiB ("
        + ", ".join(f"{role} {size:.0f}" for role, size in sorted(rss_by_role.items())) + ") | <= 1024 MiB |",
        f"| cold start, launch to first answer | {cold:.1f} s | |",
        f"| shutdown, SIGTERM to all processes gone, 16 clients sending | {shutdown:.1f} s | prompt, bounded |",
        "",
        "One service in one worker process, beside BentoML's arbiter and the store writer process "
        "(`serving/store_writer.py`: the recorder's database writes). The models are scored in the process "
        "that answers, by `features.online` (the fitted pipelines' own steps without `predict_frame`'s "
        "per-call overhead, pinned to its answers by tests); "
        "concurrent `/predict` requests share model calls (tickets per model call, from the "
        "`nightdesk_scoring_batch_size` histogram). Every answer includes the routing policy's decision "
        "and is queued for the prediction store, as in production.",
        "",
        "Bulk and in-process scoring are compared in the same state: scoring remembers the n-grams it has "
        "met (`features.transformers`' term tables), so both first see the 2,000 tickets of the latency "
        "runs and are then timed on 2,000 other tickets (the bulk tickets), median of 3 passes. The bulk "
        "client's request bodies are encoded before its clock starts, as the in-process input frame is "
        "built before its clock starts. In-process "
        "is the three registered pyfunc models' `predict`, one call per model for all 2,000 tickets (or "
        "for each 500 or 1,000: the same tickets in the same calls as the endpoint gets them, which is the "
        "goal's comparison), the remembered last batch dropped before each pass (the very batch "
        "scored just before would skip cleaning and tokenizing). In brackets, a pass with nothing "
        f"remembered, as in a fresh process (all 2,000 in one call: {cold_all:.0f} tickets/s; the first "
        "scoring in a process is noisy, so these are not the comparison).",
        "",
        f"CPU during the 500-per-call bulk runs ({bulk_wall:.1f} s of wall time), in cores busy on average: "
        + ", ".join(f"{role} {used / bulk_wall:.2f}" for role, used in sorted(bulk_cpu.items()))
        + ". The worker process scores, routes, answers and serializes every ticket on one core (one GIL); "
        "the benchmark's client (JSON both ways) shares the two cores with the server.",
        "",
        f"Bulk answers' routing actions (the policy's clock is the time of the run, {run_at:%a %H:%M} UTC): "
        + ", ".join(f"{name} {count}" for name, count in sorted(actions.items(), key=lambda kv: -kv[1]))
        + f"; load average when the bulk measurement began {load_at_bulk:.1f}. A bulk call is routed as "
        "one batch (one clock reading; the help articles of every drafted acknowledgement found with one "
        "matrix product; keyword signals searched only where a string their pattern requires occurs; SLA deadlines "
        "walked over each queue's covered time merged once per local start day) and recorded by the "
        "background writer in transactions of up to 500 predictions (one multi-row insert per table): the "
        "answers' JSON, the very bytes of the response, and the tickets' fields are pickled to the store "
        "writer process, which reads them into rows, masks the text and inserts.",
        "",
        "The policy's work depends on its clock. Routing the 2,000 bulk tickets in-process as one batch, "
        "median of 3 (us per ticket, share with a drafted acknowledgement): "
        + "; ".join(f"{name} {cost:.0f} us, {drafted:.0%}" for name, (cost, drafted) in routing_costs.items())
        + ". Off shift (nights, weekends) most tickets get an acknowledgement drafted with help articles "
        "searched for it, and each microsecond of routing adds one to what a bulk ticket costs the service: "
        "the bulk figures above hold for the run's clock."
    ]
    write_section("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
