"""Shared parts of the benchmark scripts: where the data is, the machine, and docs/benchmarks.md.

Each script owns one section of ``docs/benchmarks.md``, between
``<!-- NAME:start -->`` and ``<!-- NAME:end -->``; writing it leaves the other
sections as they are, so the scripts can be re-run one at a time.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REPORT_PATH = PROJECT_ROOT / "docs" / "benchmarks.md"
PACKAGES = ("scikit-learn", "numpy", "scipy", "pandas", "joblib", "mlflow")

INTRO = """Measured figures of the default models (`training/defaults/train.yaml`), written
by the scripts in `benchmarks/`. Re-run them from the project root with

```bash
.venv/bin/python benchmarks/quality.py   # real public data sets from ../shared/data
.venv/bin/python benchmarks/speed.py     # 50,000 generated tickets: training time, scoring rate, sizes
.venv/bin/python benchmarks/serving.py   # a real `bentoml serve`: latency, throughput, memory, cold start
.venv/bin/python benchmarks/kb_search.py        # help-article search speed and relevance
.venv/bin/python benchmarks/routing_replay.py   # a week of real tweets through the routing policy
.venv/bin/python benchmarks/transformers.py DATASET   # transformer kinds vs TF-IDF (CPU; long)
```

(or `make benchmarks`, which runs all but the transformer one). Each script replaces only its own section below
(between `<!-- NAME:start -->` and `<!-- NAME:end -->` markers) and records the
machine it ran on; numbers from different machines are not comparable, and
timings on this shared 2-core machine vary by 10-20 % from run to run."""


def shared_data_folder() -> Path:
    """``$NIGHTDESK_SHARED_DATA``, else ``shared/data`` beside the project folder."""
    configured = os.environ.get("NIGHTDESK_SHARED_DATA")
    return Path(configured) if configured else PROJECT_ROOT.parent / "shared" / "data"


def machine_lines() -> list[str]:
    """Markdown bullet lines naming the machine, the date and the software versions."""
    versions = ", ".join(f"{name} {_version(name)}" for name in PACKAGES)
    return [
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {platform.platform()}; CPU: {cpu_model()}; {os.cpu_count()} cores; {memory_gib():.0f} GiB RAM",
        f"- Python {platform.python_version()}; {versions}",
    ]


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else platform.processor() or "unknown"


def memory_gib() -> float:
    try:
        text = Path("/proc/meminfo").read_text(encoding="utf-8")
    except OSError:
        return float("nan")
    match = re.search(r"^MemTotal:\s*(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) / 2**20 if match else float("nan")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, body: str, path: Path = REPORT_PATH) -> None:
    """Replace (or add) the ``name`` section of the report, keeping everything else.

    The intro (how to re-run) is kept at the top, under the title, and
    refreshed too; other scripts' sections are left untouched.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    text = _with_block(text, "intro", INTRO, at_top=True)
    text = _with_block(text, name, body)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _with_block(text: str, name: str, body: str, *, at_top: bool = False) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text)
    if not at_top:
        return text.rstrip() + "\n\n" + block + "\n"
    title, newline, rest = text.partition("\n")
    if title.startswith("# "):
        return f"{title}\n\n{block}\n\n{rest.lstrip()}"
    return f"{block}\n\n{text}"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
