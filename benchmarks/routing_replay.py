"""Replay a week of real, timestamped tickets through predictions and the routing policy.

Tickets: the airline tweets (``../shared/data/airline-sentiment``; real creation
times with offsets, and the users' time zones where they set one), one week of
them, each routed at the moment it was created. Predictions:

- sentiment: the default TF-IDF sentiment model trained on the tweets with
  two-fold cross-fitting (the tweets are split in two halves at random; each
  half is scored by the model fitted on the other), so no tweet is scored by a
  model that saw it;
- urgency and category: the default models trained on the generated sample
  (``training/sample.py``; synthetic helpdesk tickets, never a tweet). The tweets
  are not helpdesk tickets, so these predictions are often unsure: that is part
  of what the replay shows (human reviews).

Policies: the shipped follow-the-sun example (APAC, EMEA, Americas) and a
single-region variant of it (the Americas team alone, same hours), both with the
same SLA, on-call and confidence settings.

First responses are estimated two ways: (a) unlimited capacity: a ticket is
answered the moment a team serving its queue is on shift (a page: when the
on-call engineer acknowledges, at the ack timeout); (b) finite capacity: each
team on shift answers at most ``--responses-per-hour`` tickets, earliest
deadline first. Auto-acknowledgements do not stop the SLA clock.

Writes the ``routing_replay`` section of docs/benchmarks.md and
docs/routing-replay.png. Run from the project root (heavy: under the CPU lock):
``flock /tmp/nightdesk-cpu.lock .venv/bin/python benchmarks/routing_replay.py``.
"""

from __future__ import annotations

import argparse
import copy
import heapq
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

# The project root before this folder: benchmarks/serving.py would shadow the serving package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from report import PROJECT_ROOT, machine_lines, markdown_table, say, shared_data_folder, write_section

from serving.policy import compile_policy, decide, default_policy_path
from serving.policy.calendar import next_shift_start, shift_at
from serving.policy.spec import PolicySpec
from serving.schemas import TicketIn
from training.config import load_config
from training.data import load_named_mapping, load_tickets, prepare_training_frame, validate_tickets
from training.pipelines import fit_classifier
from training.sample import generate_tickets

PLOT_PATH = PROJECT_ROOT / "docs" / "routing-replay.png"
DATA_FILE = "airline-sentiment/train.csv"
#: The replayed week, in New York days (where most of the tweets' users are).
WEEK_ZONE = "America/New_York"
NIGHT_START_HOUR, NIGHT_END_HOUR = 18, 8  # a "night" for pages per night, New York time
SENTIMENT_ONLY = "models A"
WITH_SAMPLE_MODELS = "models B"


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float
    probabilities: dict[str, float]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", default="2015-02-17", help="first New York day of the replayed week")
    parser.add_argument("--sample-rows", type=int, default=8000, help="generated tickets for urgency/category models")
    parser.add_argument("--responses-per-hour", type=float, default=100.0,
                        help="first responses one team on shift can send per hour (finite-capacity estimate)")
    args = parser.parse_args()

    path = shared_data_folder() / DATA_FILE
    if not path.is_file():
        say(f"{path} not found (set NIGHTDESK_SHARED_DATA): nothing written")
        return
    started = time.perf_counter()
    tweets = load_week(path, date.fromisoformat(args.start))
    say(f"{len(tweets):,} tweets in the week; predicting ...")
    predictions, model_notes = predict(tweets, path, args.sample_rows)
    raw = yaml.safe_load(default_policy_path().read_text(encoding="utf-8"))
    policies = {"follow-the-sun (3 regions)": compile_policy(PolicySpec.model_validate(raw)),
                "single region (Americas)": compile_policy(PolicySpec.model_validate(single_region(raw)))}
    setups = {SENTIMENT_ONLY: [{"sentiment": p["sentiment"]} for p in predictions], WITH_SAMPLE_MODELS: predictions}
    search = article_search()
    results = {}
    for setup, predicted in setups.items():
        for name, policy in policies.items():
            say(f"routing with {name}, {setup} ...")
            results[f"{name}, {setup}"] = replay(policy, tweets, predicted, search, args.responses_per_hour)
    week = week_bounds(date.fromisoformat(args.start))
    plot({name: results[f"{name}, {SENTIMENT_ONLY}"] for name in policies}, tweets, week, PLOT_PATH)
    write_section("routing_replay", render(results, tweets, model_notes, args, week,
                                           time.perf_counter() - started))
    say(f"wrote the routing_replay section of docs/benchmarks.md and {PLOT_PATH.relative_to(PROJECT_ROOT)}")


def week_bounds(first_day: date) -> tuple[datetime, datetime]:
    zone = _zone(WEEK_ZONE)
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=zone).astimezone(UTC)
    end_day = first_day + timedelta(days=7)
    return start, datetime(end_day.year, end_day.month, end_day.day, tzinfo=zone).astimezone(UTC)


def load_week(path: Path, first_day: date) -> pd.DataFrame:
    frame = load_tickets(path, load_named_mapping("airline-sentiment"))
    frame = prepare_training_frame(frame, "sentiment", validate_tickets(frame, tasks=["sentiment"]))
    start, end = week_bounds(first_day)
    week = frame[(frame["created_at"] >= start) & (frame["created_at"] < end)]
    return week.sort_values("created_at").reset_index(drop=True)


def predict(tweets: pd.DataFrame, path: Path, sample_rows: int) -> tuple[list[dict[str, Prediction]], list[str]]:
    """Per tweet, each task's prediction from a model that never saw the tweet."""
    per_task: dict[str, list[Prediction]] = {}
    notes = []
    # Sentiment: two-fold cross-fitting on all tweets of the file (the week's and the others).
    frame = load_tickets(path, load_named_mapping("airline-sentiment"))
    usable = prepare_training_frame(frame, "sentiment", validate_tickets(frame, tasks=["sentiment"]))
    usable = usable[~usable["id"].isin(tweets["id"])]  # tweets outside the week train both folds
    rng = np.random.default_rng(0)
    fold = rng.integers(0, 2, len(tweets))
    config = load_config("sentiment")
    sentiment: list[Prediction | None] = [None] * len(tweets)
    for k in (0, 1):
        train = pd.concat([usable, tweets[fold != k]], ignore_index=True)
        model = fit_classifier(train, "sentiment", config)
        held = tweets[fold == k]
        for i, row in zip(held.index, _predictions(model, held)):
            sentiment[i] = row
    per_task["sentiment"] = sentiment
    accuracy = np.mean([p.label == s for p, s in zip(sentiment, tweets["sentiment"])])
    notes.append(f"sentiment: cross-fitted on the tweets (2 folds; {len(usable):,} tweets outside the week "
                 f"in both training sets); accuracy on the week {accuracy:.3f}")
    # Urgency and category: models trained on generated helpdesk tickets.
    sample = generate_tickets(sample_rows, seed=0)
    for task in ("urgency", "category"):
        train = prepare_training_frame(sample, task, validate_tickets(sample, tasks=[task]))
        model = fit_classifier(train, task, load_config(task))
        per_task[task] = _predictions(model, tweets)
    notes.append(f"urgency, category: trained on {sample_rows:,} generated tickets (synthetic; no tweet)")
    rows = [{task: per_task[task][i] for task in per_task} for i in range(len(tweets))]
    return rows, notes


def _predictions(model, frame: pd.DataFrame) -> list[Prediction]:
    probabilities = model.predict_proba(frame)
    labels = model.labels
    out = []
    for row in probabilities.astype(float).tolist():
        best = int(np.argmax(row))
        out.append(Prediction(labels[best], row[best], dict(zip(labels, row))))
    return out


def single_region(raw: dict) -> dict:
    """The example policy with the Americas team alone (same hours, SLA, on-call, confidence)."""
    single = copy.deepcopy(raw)
    single["name"] = "single-region-americas"
    single["teams"] = {"americas": raw["teams"]["americas"]}
    single["follow_the_sun"] = {"order": ["americas"], "handoff_minutes": raw["follow_the_sun"]["handoff_minutes"]}
    single["queues"] = {name: {"title": queue["title"]} for name, queue in raw["queues"].items()}
    return single


def article_search():
    try:
        from serving.kb import KnowledgeBase
    except ImportError:
        return None
    knowledge_base = KnowledgeBase.build()
    return lambda text: knowledge_base.search(text, k=3)


@dataclass
class Replay:
    policy: object
    decisions: list
    first_response_unlimited: list[datetime]
    first_response_capacity: list[datetime]
    team_hours: float
    decide_ms: float


def replay(policy, tweets: pd.DataFrame, predictions, search, responses_per_hour: float) -> Replay:
    decisions = []
    started = time.perf_counter()
    for row, predicted in zip(tweets.itertuples(index=False), predictions):
        ticket = TicketIn(id=str(row.id), body=row.body, channel="social", created_at=row.created_at.to_pydatetime(),
                          customer_timezone=row.customer_timezone if isinstance(row.customer_timezone, str) else None)
        decisions.append(decide(policy, ticket, predicted, ticket.created_at, search=search))
    decide_ms = (time.perf_counter() - started) / max(1, len(decisions)) * 1000
    ack = timedelta(minutes=policy.spec.on_call.ack_timeout_minutes)
    unlimited = [d.sla.received_at + ack if d.action == "page_on_call"
                 else next_shift_start(policy.coverages[d.queue], d.sla.received_at) for d in decisions]
    capacity = simulate_capacity(policy, decisions, responses_per_hour)
    start = min(d.sla.received_at for d in decisions)
    team_hours = sum(_covered_hours(policy.team_coverages[t], start, start + timedelta(days=7))
                     for t in policy.calendars)
    return Replay(policy, decisions, unlimited, capacity, team_hours, decide_ms)


def simulate_capacity(policy, decisions, responses_per_hour: float, step_minutes: int = 5) -> list[datetime]:
    """First-response times when each team on shift answers ``responses_per_hour``, earliest deadline first.

    Pages are answered by the on-call engineer at the ack timeout. Teams work one
    shared backlog (every queue's teams are all teams in the example policy).
    """
    step = timedelta(minutes=step_minutes)
    answered: list[datetime | None] = [None] * len(decisions)
    ack = timedelta(minutes=policy.spec.on_call.ack_timeout_minutes)
    order = sorted(range(len(decisions)), key=lambda i: decisions[i].sla.received_at)
    t = decisions[order[0]].sla.received_at.replace(minute=0, second=0, microsecond=0)
    backlog: list[tuple[datetime, int]] = []
    next_arrival, budget = 0, 0.0
    while next_arrival < len(order) or backlog:
        t += step
        while next_arrival < len(order) and decisions[order[next_arrival]].sla.received_at < t:
            i = order[next_arrival]
            next_arrival += 1
            if decisions[i].action == "page_on_call":
                answered[i] = decisions[i].sla.received_at + ack
            else:
                heapq.heappush(backlog, (decisions[i].sla.first_response.due_utc, i))
        on_shift = sum(shift_at(c, t - step / 2) is not None for c in policy.team_coverages.values())
        budget = budget + on_shift * responses_per_hour * step_minutes / 60 if on_shift else 0.0
        while backlog and budget >= 1:
            _, i = heapq.heappop(backlog)
            answered[i] = t
            budget -= 1
        if not backlog:
            budget = 0.0  # idle time is not saved up for later
    return answered


def _covered_hours(coverage, start: datetime, end: datetime) -> float:
    from serving.policy.calendar import business_minutes_between

    return business_minutes_between(coverage, start, end) / 60


def _zone(name: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def night_of(moment: datetime) -> date | None:
    """The New York night (its evening's date) a moment falls in, or None during the day."""
    local = moment.astimezone(_zone(WEEK_ZONE))
    if local.hour >= NIGHT_START_HOUR:
        return local.date()
    if local.hour < NIGHT_END_HOUR:
        return local.date() - timedelta(days=1)
    return None


def summarise(result: Replay) -> dict:
    decisions = result.decisions
    n = len(decisions)
    actions = Counter(d.action for d in decisions)
    after_hours = sum(not d.team_on_shift for d in decisions)
    pages_by_night = Counter(night_of(d.sla.received_at) for d in decisions if d.action == "page_on_call")
    pages_by_night.pop(None, None)
    nights = 7
    due = [d.sla.first_response.due_utc for d in decisions]
    waits_unlimited = np.array([(r - d.sla.received_at).total_seconds() / 3600
                                for r, d in zip(result.first_response_unlimited, decisions)])
    waits_capacity = np.array([(r - d.sla.received_at).total_seconds() / 3600
                               for r, d in zip(result.first_response_capacity, decisions)])
    return {
        "n": n,
        "actions": actions,
        "after_hours": after_hours / n,
        "pages": actions["page_on_call"],
        "pages_per_night": sum(pages_by_night.values()) / nights,
        "max_pages_night": max(pages_by_night.values(), default=0),
        "auto_ack": actions["auto_acknowledge"],
        "breaches_unlimited": sum(r > x for r, x in zip(result.first_response_unlimited, due)),
        "breaches_capacity": sum(r > x for r, x in zip(result.first_response_capacity, due)),
        "wait_unlimited": (np.median(waits_unlimited), np.percentile(waits_unlimited, 90)),
        "wait_capacity": (np.median(waits_capacity), np.percentile(waits_capacity, 90)),
        "priorities": Counter(d.priority for d in decisions),
        "team_hours": result.team_hours,
        "decide_ms": result.decide_ms,
        "review_levels": Counter(d.confidence_levels.get("category") for d in decisions),
    }


def render(results: dict[str, Replay], tweets: pd.DataFrame, notes: list[str], args, week, seconds: float) -> str:
    summaries = {name: summarise(r) for name, r in results.items()}
    names = list(summaries)
    n = summaries[names[0]]["n"]

    def pct(x: float) -> str:
        return f"{100 * x:.1f} %"

    rows = [
        ["tickets replayed", *[f"{s['n']:,}" for s in summaries.values()]],
        ["team hours on shift in the week", *[f"{s['team_hours']:.0f}" for s in summaries.values()]],
        ["arriving after hours (no team of the queue on shift)", *[pct(s["after_hours"]) for s in summaries.values()]],
        ["pages (page_on_call)", *[f"{s['pages']}" for s in summaries.values()]],
        ["pages per night (mean over 7 New York nights 18:00-08:00; max)",
         *[f"{s['pages_per_night']:.1f} (max {s['max_pages_night']})" for s in summaries.values()]],
        ["auto-acknowledged", *[f"{s['auto_ack']:,} ({pct(s['auto_ack'] / s['n'])})" for s in summaries.values()]],
        ["first-response breaches, unlimited capacity",
         *[f"{s['breaches_unlimited']:,} ({pct(s['breaches_unlimited'] / s['n'])})" for s in summaries.values()]],
        [f"first-response breaches, {args.responses_per_hour:g} responses/hour per team on shift",
         *[f"{s['breaches_capacity']:,} ({pct(s['breaches_capacity'] / s['n'])})" for s in summaries.values()]],
        ["wait for a first response, unlimited capacity: median / p90 (h)",
         *[f"{s['wait_unlimited'][0]:.1f} / {s['wait_unlimited'][1]:.1f}" for s in summaries.values()]],
        [f"wait for a first response, {args.responses_per_hour:g}/hour per team: median / p90 (h)",
         *[f"{s['wait_capacity'][0]:.1f} / {s['wait_capacity'][1]:.1f}" for s in summaries.values()]],
    ]
    for action in ("assign_now", "human_review", "queue_for_next_shift", "auto_acknowledge", "page_on_call"):
        rows.append([f"action {action}", *[f"{s['actions'][action]:,} ({pct(s['actions'][action] / s['n'])})"
                                          for s in summaries.values()]])
    first = summaries[names[0]]
    priorities = "; ".join(
        f"{setup}: " + ", ".join(f"{p} {summaries[name]['priorities'][p]:,}" for p in ("P1", "P2", "P3", "P4"))
        for setup, name in ((SENTIMENT_ONLY, names[0]), (WITH_SAMPLE_MODELS, names[-1])))
    levels = ", ".join(f"{k} {v:,}" for k, v in sorted(summaries[names[-1]]["review_levels"].items(),
                                                         key=lambda kv: str(kv[0])))
    with_zone = tweets["customer_timezone"].notna().mean()
    start, end = week
    lines = [
        "## Routing replay: a week of real tickets through the example policy",
        "",
        *machine_lines(),
        f"- Run time {seconds:.0f} s (training the models included); `decide` took "
        f"{first['decide_ms']:.2f} ms per ticket (help-article search included)",
        f"- Re-run: `flock /tmp/nightdesk-cpu.lock .venv/bin/python benchmarks/routing_replay.py` "
        f"(`--responses-per-hour`, `--start`, `--sample-rows`)",
        "",
        f"{n:,} airline tweets (`../shared/data/{DATA_FILE}`) created between {start:%Y-%m-%d %H:%M} and "
        f"{end:%Y-%m-%d %H:%M} UTC (New York days {args.start} + 7), each routed at the moment it was created; "
        f"{pct(with_zone)} name the user's time zone (the others get the policy's default, UTC). No customer tier "
        "(all standard). Predictions:",
        "",
        *[f"- {note}" for note in notes],
        "",
        f"*{SENTIMENT_ONLY}*: the sentiment model only (the tweets have no urgency or category labels): the "
        "base priority is the policy's `without_urgency` (P3), raised by negative sentiment and floored by "
        f"keyword signals; every ticket goes to the review queue. *{WITH_SAMPLE_MODELS}*: plus the urgency and "
        "category models trained on generated tickets (off-domain for tweets).",
        "",
        "Policies: the shipped example (`serving/defaults/policy.yaml`: APAC Singapore 08-17, EMEA Dublin 08-17, "
        "Americas New York 08-18, weekdays, local holidays) and the same policy with the Americas team alone. "
        "First responses: *unlimited capacity* = answered as soon as a team of the queue is on shift (a page at "
        f"the {results[names[0]].policy.spec.on_call.ack_timeout_minutes}-minute ack timeout); *finite capacity* = each team on shift "
        f"sends at most {args.responses_per_hour:g} first responses an hour, earliest deadline first. "
        "Auto-acknowledgements do not stop the SLA clock.",
        "",
        markdown_table(["", *names], rows),
        "",
        f"Priorities (the same for both policies): {priorities}. Category confidence levels ({WITH_SAMPLE_MODELS}): "
        f"{levels}.",
        "",
        f"![Arrivals, coverage and backlog over the replayed week ({SENTIMENT_ONLY})](routing-replay.png)",
        "",
        "Reading it: the business-hours SLA clock stops while nobody is on shift, so with unlimited capacity "
        "only calendar-clock targets (P1) can be missed, and off shift a P1 pages the on-call engineer, who "
        "answers within the ack timeout: no breach by construction. The policies differ in how long customers "
        "wait and, once capacity is finite, in breaches. Auto-acknowledgement needs a category prediction at "
        f"`auto_apply` confidence: the off-domain category model reaches it for "
        f"{summaries[names[-1]]['review_levels'].get('auto_apply', 0):,} of {n:,} tweets, and *{SENTIMENT_ONLY}* "
        "has no category model at all, so tickets off shift are queued with a drafted reply instead. "
        f"The single-region policy has {summaries[names[1]]['team_hours']:.0f} team hours against "
        f"{first['team_hours']:.0f}: the comparison is of coverage, not of equal cost.",
    ]
    return "\n".join(lines)


def plot(results: dict[str, Replay], tweets: pd.DataFrame, week, path: Path) -> None:
    """Arrivals per hour, each policy's coverage as a band, and the finite-capacity backlog with pages."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start, end = week
    hours = pd.date_range(start, end, freq="h", inclusive="left")
    arrivals = tweets.set_index("created_at").resample("h").size().reindex(hours, fill_value=0)
    fig, (top, bands, bottom) = plt.subplots(3, 1, figsize=(11, 7), sharex=True, height_ratios=(3, 0.8, 3))
    top.bar(hours, arrivals.to_numpy(), width=1 / 24, align="edge", color="#4c72b0")
    colours = ("#dd8452", "#55a868")
    names = list(results)
    for k, (name, result) in enumerate(results.items()):
        on = np.array([any(shift_at(c, h.to_pydatetime() + timedelta(minutes=30)) is not None
                           for c in result.policy.team_coverages.values()) for h in hours], dtype=float)
        bands.fill_between(hours, k + 0.1, k + 0.1 + 0.8 * on, step="post", color=colours[k])
        bottom.plot(hours, _backlog(result, hours), color=colours[k], label=f"unanswered tickets: {name}")
        pages = [d.sla.received_at for d in result.decisions if d.action == "page_on_call"]
        bottom.plot(pages, [-150 - 250 * k] * len(pages), "|", color=colours[k], markersize=10,
                    label=f"pages: {name}")
    top.set_ylabel("tickets per hour")
    bands.set_yticks([0.5, 1.5], [f"on shift: {n.split(' (')[0]}" for n in names], fontsize=8)
    bands.set_ylim(0, 2)
    bottom.set_ylabel("backlog (finite capacity)")
    bottom.legend(loc="upper left", fontsize=8)
    bottom.set_xlabel("UTC")
    fig.suptitle("A week of airline tweets routed by the example policy: follow-the-sun vs one region "
                 f"({SENTIMENT_ONLY}: sentiment model only)", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _backlog(result: Replay, hours) -> list[int]:
    arrived = np.array([d.sla.received_at.timestamp() for d in result.decisions])
    answered = np.array([t.timestamp() for t in result.first_response_capacity])
    return [int(((arrived <= h.timestamp()) & (answered > h.timestamp())).sum()) for h in hours]


if __name__ == "__main__":
    main()
