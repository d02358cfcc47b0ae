"""The real `nightdesk` command against a real MLflow SQLite store in a temporary NIGHTDESK_HOME.

Training all three tasks happens once per session (``trained_registry`` in conftest.py,
through this same CLI); the tests here read what it printed and what it registered.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from mlflow import MlflowClient

from features.schema import SENTIMENT_LABELS, TASKS, URGENCY_LABELS
from training import tracking
from training.cli import main
from training.settings import NightdeskSettings
from training.sample import DEFAULT_CATEGORIES, generate_tickets, write_tickets

pytestmark = pytest.mark.integration

TASK_LABELS = {"urgency": set(URGENCY_LABELS), "category": set(DEFAULT_CATEGORIES), "sentiment": set(SENTIMENT_LABELS)}
RUN_ID = re.compile(r"^run id:\s+([0-9a-f]{32})$", re.MULTILINE)
MODEL_URI = re.compile(r"^model uri:\s+(models:/nightdesk-(\w+)/(\d+))\b", re.MULTILINE)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_clean_error(result: Result, fragment: str) -> None:
    """A non-zero exit with exactly one 'Error: ...' line naming the problem, and no traceback."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), f"crashed with {result.exception!r}"
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert fragment in errors[0], errors[0]


@pytest.fixture
def registry(trained_registry, monkeypatch):
    trained_registry.env(monkeypatch)
    return trained_registry


@pytest.fixture
def client(registry):
    return tracking.connect(registry.settings())


@pytest.fixture
def own_registry(trained_registry, tmp_path, monkeypatch):
    """A private copy of the trained registry, for tests that train or promote again."""
    registry = trained_registry.copy_to(tmp_path / "registry")
    registry.env(monkeypatch)
    return registry


@pytest.fixture(scope="module")
def holdout_csv(tmp_path_factory) -> Path:
    """Labelled tickets no model was trained on."""
    path = tmp_path_factory.mktemp("holdout") / "holdout.csv"
    write_tickets(generate_tickets(300, seed=11), path)
    return path


# --------------------------------------------------------------------- data


def test_data_sample_is_deterministic(tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    result = run("data", "sample", "--rows", "40", "--seed", "3", "--out", first)
    assert result.exit_code == 0, result.output
    assert "wrote 40 synthetic tickets" in result.stdout
    assert run("data", "sample", "--rows", "40", "--seed", "3", "--out", second).exit_code == 0
    assert first.read_bytes() == second.read_bytes()
    frame = pd.read_csv(first)
    assert len(frame) == 40
    assert {"subject", "body", *TASKS} <= set(frame.columns)


def test_data_sample_writes_parquet_and_refuses_unknown_suffix(tmp_path):
    assert run("data", "sample", "--rows", "10", "--out", tmp_path / "t.parquet").exit_code == 0
    assert len(pd.read_parquet(tmp_path / "t.parquet")) == 10
    assert_clean_error(run("data", "sample", "--rows", "10", "--out", tmp_path / "t.xlsx"), "unsupported suffix")


@pytest.fixture(scope="module")
def sample_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("validate") / "tickets.csv"
    write_tickets(generate_tickets(200, seed=5), path)
    return path


def test_validate_good_data_exits_zero(sample_csv):
    result = run("data", "validate", "--data", sample_csv)
    assert result.exit_code == 0, result.output
    assert "validation: OK" in result.stdout
    assert "rows" in result.stdout and "200" in result.stdout


def test_validate_json_report(sample_csv):
    result = run("data", "validate", "--data", sample_csv, "--json", "--task", "urgency")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["rows"] == 200
    assert report["tasks"] == ["urgency"]
    assert sum(report["label_distribution"]["urgency"].values()) == 200


def test_validate_fails_on_a_csv_without_body(sample_csv, tmp_path):
    path = tmp_path / "no_body.csv"
    pd.read_csv(sample_csv).drop(columns=["body"]).to_csv(path, index=False)

    result = run("data", "validate", "--data", path)

    assert result.exit_code == 1
    assert "'body' is missing" in result.stdout


def test_validate_fails_on_a_csv_without_any_text(sample_csv, tmp_path):
    path = tmp_path / "no_text.csv"
    pd.read_csv(sample_csv).drop(columns=["subject", "body"]).to_csv(path, index=False)

    result = run("data", "validate", "--data", path)

    assert result.exit_code == 1
    assert "validation: FAILED" in result.stdout
    assert "required column 'body' is missing" in result.stdout
    assert "Traceback" not in result.output


def test_validate_fails_on_unknown_urgency_labels(sample_csv, tmp_path):
    frame = pd.read_csv(sample_csv)
    frame.loc[:2, "urgency"] = "catastrophic"
    path = tmp_path / "bad_labels.csv"
    frame.to_csv(path, index=False)

    result = run("data", "validate", "--data", path)

    assert result.exit_code == 1
    errors = result.stdout.split("Errors", 1)[1]
    assert "urgency labels outside critical, high, medium, low in 3 rows: 'catastrophic' (3)" in errors


# --------------------------------------------------------------------- train


@pytest.mark.parametrize("task", TASKS)
def test_train_prints_run_id_and_model_uri(registry, client, task):
    output = registry.train_output[task]
    run_id = RUN_ID.search(output)
    uri = MODEL_URI.search(output)
    assert run_id and uri, output
    assert uri.group(2) == task
    assert re.search(rf"{task}: trained on [\d,]+, validated on [\d,]+ tickets; accuracy 0\.\d+", output)

    # the printed run and model version exist and belong together
    run_info = client.get_run(run_id.group(1))
    assert run_info.data.tags["task"] == task
    assert run_info.data.params["task"] == task
    assert 0 < run_info.data.metrics["macro_f1"] <= 1
    version = client.get_model_version(f"nightdesk-{task}", uri.group(3))
    assert version.run_id == run_id.group(1)
    artifacts = {a.path for a in client.list_artifacts(run_id.group(1), "evaluation")}
    assert {"evaluation/confusion_matrix.png", "evaluation/validation.parquet"} <= artifacts


def test_train_json_and_text_columns_on_a_custom_csv(mlflow_home, tickets, tmp_path):
    path = tmp_path / "export.csv"
    custom = tickets.head(400)[["body", "sentiment"]].rename(columns={"body": "message", "sentiment": "mood"})
    custom.to_csv(path, index=False)

    validated = run("data", "validate", "--data", path, "--text-column", "message", "--label-column", "mood",
                    "--task", "sentiment")
    assert validated.exit_code == 0, validated.output
    assert "validation: OK" in validated.stdout

    result = run("train", "--task", "sentiment", "--data", path, "--text-column", "message",
                 "--label-column", "mood", "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["task"] == "sentiment"
    assert answer["model_uri"] == "models:/nightdesk-sentiment/1"
    assert re.fullmatch(r"[0-9a-f]{32}", answer["run_id"])
    assert answer["metrics"]["n"] == 80  # no timestamps: a stratified 20 % holdout
    assert answer["metrics"]["macro_f1"] > answer["metrics"]["majority_baseline"]["macro_f1"]
    client = tracking.connect(NightdeskSettings(_env_file=None))
    assert client.get_run(answer["run_id"]).data.params["train_rows"] == "320"
    assert str(client.get_model_version_by_alias("nightdesk-sentiment", "candidate").version) == "1"


# --------------------------------------------------------------------- evaluate


def test_evaluate_json_is_one_object_with_the_metrics(registry, holdout_csv):
    result = run("evaluate", "--task", "category", "--data", holdout_csv, "--json")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])

    assert report["task"] == "category"
    assert report["model"] == "models:/nightdesk-category@champion"
    assert report["n"] == 300
    assert 0 <= report["accuracy"] <= 1 and 0 <= report["macro_f1"] <= 1
    assert set(report["per_class"]) == TASK_LABELS["category"]
    for metrics in report["per_class"].values():
        assert {"precision", "recall", "f1", "support"} <= set(metrics)
        assert 0 <= metrics["precision"] <= 1 and 0 <= metrics["recall"] <= 1
    assert sum(m["support"] for m in report["per_class"].values()) == 300
    baseline = report["majority_baseline"]
    assert baseline["label"] in TASK_LABELS["category"]
    assert report["accuracy"] > baseline["accuracy"] + 0.2
    assert report["macro_f1"] > baseline["macro_f1"]


def test_evaluate_text_with_an_explicit_model_uri(registry, holdout_csv):
    result = run("evaluate", "--task", "urgency", "--data", holdout_csv, "--model", "models:/nightdesk-urgency/1")
    assert result.exit_code == 0, result.output
    assert "urgency with models:/nightdesk-urgency/1 on 300 tickets" in result.stdout
    assert "majority baseline" in result.stdout
    for label in URGENCY_LABELS:
        assert re.search(rf"^{label}\s+\d\.\d{{3}}\s+\d\.\d{{3}}\s+\d+$", result.stdout, re.MULTILINE)


def test_evaluate_without_labels_is_a_clean_error(registry, tmp_path):
    path = tmp_path / "unlabelled.csv"
    pd.DataFrame({"subject": ["a"], "body": ["b"]}).to_csv(path, index=False)
    assert_clean_error(run("evaluate", "--task", "urgency", "--data", path), "no urgency labels")


# --------------------------------------------------------------------- promote


@pytest.mark.parametrize("task", TASKS)
def test_first_promotion_succeeds_with_reasons(registry, task):
    output = registry.promote_output[task]
    version = MODEL_URI.search(registry.train_output[task]).group(3)
    assert f"{task}: candidate v{version} promoted (champion was none;" in output
    reasons = [line for line in output.splitlines() if line.startswith("  - ")]
    assert any("first model beats the baseline" in r for r in reasons), output
    assert any("recall" in r for r in reasons), output


def test_champion_alias_points_at_the_promoted_version(registry, client):
    for task in TASKS:
        champion = tracking.version_by_alias(client, registry.settings(), task, tracking.CHAMPION)
        assert champion is not None
        assert champion.tags["promotion_decision"] == "promoted"
        assert "first model beats the baseline" in champion.tags["promotion_reasons"]
        promoted = re.search(r"candidate v(\d+) promoted", registry.promote_output[task])
        assert str(champion.version) == promoted.group(1) == "1"


def test_promoting_the_champion_again_is_rejected_with_a_reason(own_registry):
    # Regression: MLflow's SQL store returns int versions; the message used to crash with TypeError.
    client = tracking.connect(own_registry.settings())
    before = tracking.version_by_alias(client, own_registry.settings(), "urgency", tracking.CHAMPION).version
    result = run("promote", "--task", "urgency")
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "rejected" in result.stdout and "is already the champion" in result.stdout
    after = tracking.version_by_alias(client, own_registry.settings(), "urgency", tracking.CHAMPION).version
    assert str(after) == str(before)


def test_second_identical_candidate_is_decided_with_reasons(own_registry, trained_registry):
    settings = own_registry.settings()
    client = tracking.connect(settings)
    old_champion = str(tracking.version_by_alias(client, settings, "sentiment", tracking.CHAMPION).version)

    trained = run("train", "--task", "sentiment", "--data", own_registry.data)
    assert trained.exit_code == 0, trained.output
    new_version = MODEL_URI.search(trained.stdout).group(3)
    assert new_version != old_champion
    candidate = tracking.version_by_alias(client, settings, "sentiment", tracking.CANDIDATE)
    assert str(candidate.version) == new_version

    result = run("promote", "--task", "sentiment", "--json")
    assert result.exit_code in (0, 2), result.output
    decision = json.loads(result.stdout)
    assert decision["candidate_version"] == new_version
    assert decision["champion_version"] == old_champion
    assert decision["reasons"]
    assert any("champion" in reason for reason in decision["reasons"])

    champion = str(tracking.version_by_alias(client, settings, "sentiment", tracking.CHAMPION).version)
    if decision["decision"] == "promoted":
        assert result.exit_code == 0
        assert champion == new_version
        # same data, same seed: the model is the same, so it ties and a tie is enough
        assert any("matches or beats the champion" in reason for reason in decision["reasons"])
    else:
        assert result.exit_code == 2
        assert champion == old_champion
    tags = client.get_model_version("nightdesk-sentiment", new_version).tags
    assert tags["promotion_decision"] == decision["decision"]
    assert tags["promotion_reasons"]

    # the shared registry did not change
    shared_uri = f"sqlite:///{trained_registry.home / 'mlflow.db'}"
    shared = MlflowClient(tracking_uri=shared_uri, registry_uri=shared_uri)
    assert [str(v.version) for v in shared.search_model_versions("name = 'nightdesk-sentiment'")] == ["1"]


# --------------------------------------------------------------------- predict


def test_predict_text_and_json(registry):
    texts = ["Production is down and all users are affected.", "How can I export all tickets to CSV?"]
    result = run("predict", "--task", "urgency", *texts)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].split()[0] in {"critical", "high"}
    assert all(line.split()[0] in URGENCY_LABELS and "because:" in line for line in lines)

    result = run("predict", "--task", "category", "--json", "I was charged twice on my invoice, please refund")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["label"] == "billing"
    assert set(answer["probabilities"]) == TASK_LABELS["category"]
    assert answer["confidence"] == pytest.approx(max(answer["probabilities"].values()))
    assert isinstance(answer["needs_review"], bool) and answer["truncated"] is False
    assert answer["top_features"] and all(isinstance(f, str) for f in answer["top_features"])


# --------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["data", "validate", "--data", "{tmp}/missing.csv"], "data file not found"),
        (["data", "validate", "--data", "{tmp}/tickets.xlsx"], "unknown data format"),
        (["data", "validate", "--data", "{csv}", "--mapping", "no-such-mapping"], "no built-in mapping named"),
        (["data", "validate", "--data", "{csv}", "--text-column", "body"], "--text-column and --label-column go together"),
        (["data", "validate", "--data", "{csv}", "--mapping", "banking77", "--label-column", "x"], "not both"),
        (["train", "--task", "urgency", "--data", "{tmp}/missing.csv"], "data file not found"),
        (["train", "--task", "priority", "--data", "{csv}"], "Invalid value for '--task'"),
    ],
    ids=["missing-file", "unknown-format", "unknown-mapping", "text-column-alone", "mapping-and-columns",
         "train-missing-file", "unknown-task"],
)
def test_bad_input_is_a_one_line_error(nightdesk_home, sample_csv, tmp_path, args, fragment):
    (tmp_path / "tickets.xlsx").write_bytes(b"PK")
    result = run(*[a.format(tmp=tmp_path, csv=sample_csv) for a in args])
    assert_clean_error(result, fragment)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["predict", "--task", "urgency", "hello"], "nightdesk-urgency"),
        (["promote", "--task", "category"], "has no 'candidate' version; train one first"),
        (["evaluate", "--task", "category", "--data", "{csv}"], "nightdesk-category"),
        (["predict", "--task", "urgency", "--model", "runs:/0123456789abcdef0123456789abcdef/model", "hi"],
         "0123456789abcdef0123456789abcdef"),
    ],
    ids=["predict-no-model", "promote-no-candidate", "evaluate-no-model", "predict-unknown-run"],
)
def test_missing_models_are_a_one_line_error(mlflow_home, sample_csv, args, fragment):
    assert_clean_error(run(*[a.format(csv=sample_csv) for a in args]), fragment)


def test_bad_config_is_a_one_line_error(nightdesk_home, sample_csv, tmp_path):
    config = tmp_path / "experiment.yaml"
    config.write_text("model:\n  kernel: rbf\n")
    assert_clean_error(run("train", "--task", "urgency", "--data", sample_csv, "--config", config), "model.kernel")


def test_non_mapping_task_section_is_a_one_line_error(nightdesk_home, sample_csv, tmp_path):
    config = tmp_path / "experiment.yaml"
    config.write_text("tasks:\n  urgency: 5\n")
    assert_clean_error(run("train", "--task", "urgency", "--data", sample_csv, "--config", config), "urgency")


def test_the_installed_command_fails_without_a_traceback(nightdesk_home, tmp_path):
    """The real entry point in a real process (what a user sees in a terminal)."""
    command = Path(sys.executable).with_name("nightdesk")
    result = subprocess.run([str(command), "data", "validate", "--data", str(tmp_path / "missing.csv")],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"Error: data file not found: {tmp_path / 'missing.csv'}"]
    assert result.stdout == ""
