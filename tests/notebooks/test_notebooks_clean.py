"""Notebooks are committed without outputs: no results, ticket text or execution counts in git.

Outputs of a run hold ticket text, local paths and run ids, and make every diff noisy.
Clear them before committing: "Clear All Outputs" in Jupyter and save, or
``jupyter nbconvert --clear-output --inplace notebooks/*.ipynb`` where nbconvert is installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.rglob("*.ipynb"))


def saved_output_problems(notebook: dict) -> list[str]:
    """One line per code cell that carries outputs or an execution count."""
    problems = []
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        found = []
        if cell.get("outputs"):
            found.append(f"{len(cell['outputs'])} output(s)")
        if cell.get("execution_count") is not None:
            found.append(f"execution_count {cell['execution_count']}")
        if found:
            problems.append(f"cell {index}: {', '.join(found)}")
    return problems


def test_there_are_notebooks_to_check():
    assert NOTEBOOKS, f"no notebooks found under {NOTEBOOKS_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(NOTEBOOKS_DIR)))
def test_notebook_is_saved_without_outputs(path: Path):
    problems = saved_output_problems(json.loads(path.read_text(encoding="utf-8")))
    assert not problems, f"{path.name} was saved with outputs; clear them before committing: " + "; ".join(problems)


def test_the_check_notices_outputs_and_execution_counts():
    executed = {"cells": [
        {"cell_type": "markdown", "source": "# title"},
        {"cell_type": "code", "execution_count": 3, "outputs": [{"output_type": "stream", "text": "x"}]},
        {"cell_type": "code", "execution_count": 4, "outputs": []},
        {"cell_type": "code", "execution_count": None, "outputs": []},
    ]}
    assert saved_output_problems(executed) == ["cell 1: 1 output(s), execution_count 3", "cell 2: execution_count 4"]
