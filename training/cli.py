"""The ``nightdesk`` command: one thin subcommand per workflow step.

Output meant for scripts (``--json``) goes to stdout; progress goes to stderr.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click

from features.schema import TASKS
from training.settings import quiet_mlflow

TASK_CHOICE = click.Choice(TASKS)


class Stages:
    """A progress bar over named workflow steps, on stderr."""

    def __init__(self, total: int, description: str):
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc=description, file=sys.stderr, leave=False,
                         bar_format="{desc}: {n_fmt}/{total_fmt} {bar} {postfix} [{elapsed}]",
                         disable=None)

    def __call__(self, step: str) -> None:
        if self._bar.n < self._bar.total:
            self._bar.update(1)
        self._bar.set_postfix_str(step)

    def close(self) -> None:
        self._bar.close()


def _fail_cleanly(function):
    """Known failures (bad data, bad config, missing models) become a one-line error, not a traceback."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        from mlflow.exceptions import MlflowException

        from features.mapping import MappingError
        from training.config import ConfigError
        from training.data import DataLoadError

        try:
            return function(*args, **kwargs)
        except (MappingError, ConfigError, DataLoadError, LookupError, MlflowException, ValueError) as error:
            raise click.ClickException(str(error)) from None

    return wrapper


def data_options(function):
    """--data with either --mapping or --text-column/--label-column."""
    options = [
        click.option("--data", "data", required=True,
                     help="Tickets to read: a .csv/.tsv, .parquet, .jsonl or .json file, or a database URL "
                          "(sqlite:///file.db, postgresql+psycopg://...) together with --query."),
        click.option("--query", default=None, help="SQL query to run when --data is a database URL."),
        click.option("--mapping", default=None,
                     help="Column mapping: a YAML file, or the name of a bundled one (e.g. banking77). "
                          "Without it the data must use Nightdesk's column names."),
        click.option("--text-column", "text_columns", multiple=True,
                     help="Instead of --mapping: a source column holding ticket text (repeat for several; "
                          "the first becomes the subject when there are two or more)."),
        click.option("--label-column", default=None,
                     help="Instead of --mapping: the source column holding the task's label."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _load_data(data: str, query: str | None, mapping: str | None, text_columns: tuple[str, ...],
               label_column: str | None, task: str | None):
    from features.mapping import mapping_from_columns
    from training.data import load_named_mapping, load_tickets

    if mapping and (text_columns or label_column):
        raise click.UsageError("use either --mapping or --text-column/--label-column, not both")
    column_mapping = None
    if mapping:
        column_mapping = load_named_mapping(mapping)
    elif text_columns or label_column:
        if not (text_columns and label_column and task):
            raise click.UsageError("--text-column and --label-column go together, with --task")
        column_mapping = mapping_from_columns(list(text_columns), label_column, task)
    return load_tickets(data, column_mapping, query=query)


def _settings():
    from training.settings import NightdeskSettings

    return NightdeskSettings()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def main() -> None:
    """Nightdesk: urgency, category and sentiment models for round-the-clock helpdesks.

    State lives in NIGHTDESK_HOME (default ./.nightdesk); MLflow tracking defaults to a
    SQLite store there unless MLFLOW_TRACKING_URI is set.
    """
    quiet_mlflow()


@main.group()
def data() -> None:
    """Create and check ticket data."""


@data.command("sample")
@click.option("--rows", type=click.IntRange(min=1), default=5000, show_default=True,
              help="How many synthetic tickets to generate.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write them: .csv, .parquet or .jsonl.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same tickets.")
@_fail_cleanly
def data_sample(rows: int, out: Path, seed: int) -> None:
    """Write a deterministic sample of SYNTHETIC tickets (for the quickstart and tests)."""
    from training.sample import generate_tickets, write_tickets

    frame = generate_tickets(rows, seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_tickets(frame, out)
    click.echo(f"wrote {len(frame):,} synthetic tickets to {out}")


@data.command("validate")
@data_options
@click.option("--task", "tasks", type=TASK_CHOICE, multiple=True,
              help="Check the labels of these tasks (default: every task whose label column exists).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_fail_cleanly
def data_validate(data, query, mapping, text_columns, label_column, tasks, as_json) -> None:
    """Report missing columns, empty texts, unknown labels, duplicates and bad dates.

    Exits with status 1 when the data has errors that block training.
    """
    from training.data import validate_tickets

    frame = _load_data(data, query, mapping, text_columns, label_column, tasks[0] if len(tasks) == 1 else None)
    report = validate_tickets(frame, tasks=list(tasks) or [t for t in TASKS if t in frame.columns])
    click.echo(json.dumps(report.to_dict(), indent=2, default=str) if as_json else report.to_text())
    if not report.ok:
        sys.exit(1)


@main.command()
@click.option("--task", type=TASK_CHOICE, required=True, help="Which model to train.")
@data_options
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Experiment config YAML overriding the packaged defaults.")
@click.option("--model-type", type=click.Choice(["tfidf", "embedding", "finetune", "ensemble"]), default=None,
              help="Kind of model: tfidf (TF-IDF linear, the default), embedding (frozen sentence embeddings + "
                   "linear head), finetune (fine-tuned encoder), ensemble (transformer + TF-IDF averaged). "
                   "Default: the config's model_type (e.g. from configs/best_models.yaml), else tfidf.")
@click.option("--json", "as_json", is_flag=True, help="Print run id, model URI and metrics as JSON.")
@_fail_cleanly
def train(task, data, query, mapping, text_columns, label_column, config_path, model_type, as_json) -> None:
    """Train a model, evaluate it on a held-out split, log it to MLflow and register it as `candidate`.

    Prints the run id and the models:/ URI of the new version.
    """
    from training.config import load_config
    from training.workflows import train_task

    config = load_config(task, config_path)
    if model_type:
        config = config.model_copy(update={"model_type": model_type})
    stages = Stages(6, f"train {task}")
    stages("loading data")
    try:
        frame = _load_data(data, query, mapping, text_columns, label_column, task)
        result = train_task(frame, task, config, _settings(), source=str(data), progress=stages)
    finally:
        stages.close()
    if as_json:
        click.echo(json.dumps({"task": task, "run_id": result.run_id, "model_uri": result.model_uri,
                               "version": result.version, "metrics": result.report.summary()}))
        return
    base = result.report.majority_baseline
    click.echo(f"run id:    {result.run_id}")
    click.echo(f"model uri: {result.model_uri}  (alias: candidate)")
    click.echo(f"{task}: trained on {result.train_rows:,}, validated on {result.validation_rows:,} tickets; "
               f"accuracy {result.report.accuracy:.3f}, macro-F1 {result.report.macro_f1:.3f} "
               f"(majority baseline {base.accuracy:.3f} / {base.macro_f1:.3f}), "
               f"ECE {result.report.expected_calibration_error:.3f}")


@main.command()
@click.option("--task", type=TASK_CHOICE, required=True, help="Which task's labels to score against.")
@data_options
@click.option("--model", "model_uri", default=None,
              help="Model URI (models:/nightdesk-category/3, models:/nightdesk-category@champion, runs:/...). "
                   "Default: the task's champion.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the metrics.")
@_fail_cleanly
def evaluate(task, data, query, mapping, text_columns, label_column, model_uri, as_json) -> None:
    """Score any labelled file with any logged model: accuracy, macro-F1, per-class metrics, baseline."""
    from training import tracking
    from training.workflows import evaluate_model

    settings = _settings()
    frame = _load_data(data, query, mapping, text_columns, label_column, task)
    uri = model_uri or tracking.alias_uri(settings, task, tracking.CHAMPION)
    report = evaluate_model(frame, task, uri, settings)
    if as_json:
        click.echo(json.dumps({"task": task, "model": uri, **report.summary()}))
        return
    click.echo(f"{task} with {uri} on {report.n:,} tickets")
    click.echo(f"accuracy {report.accuracy:.4f}  macro-F1 {report.macro_f1:.4f}  ECE {report.expected_calibration_error:.4f}")
    base = report.majority_baseline
    click.echo(f"majority baseline (always {base.label!r}): accuracy {base.accuracy:.4f}  macro-F1 {base.macro_f1:.4f}")
    width = max(len(label) for label in report.per_class)
    click.echo(f"{'class':<{width}}  precision  recall  support")
    for label, m in report.per_class.items():
        click.echo(f"{label:<{width}}  {m.precision:9.3f}  {m.recall:6.3f}  {m.support:7d}")


@main.command()
@click.option("--task", type=TASK_CHOICE, required=True, help="Whose candidate to consider.")
@click.option("--data", default=None,
              help="Labelled tickets to compare candidate and champion on (default: the candidate's "
                   "validation split, logged with its training run).")
@click.option("--query", default=None, help="SQL query when --data is a database URL.")
@click.option("--mapping", default=None, help="Column mapping for --data (YAML file or bundled name).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Config with the promotion gate's recall floors and tolerance.")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@_fail_cleanly
def promote(task, data, query, mapping, config_path, as_json) -> None:
    """Move the `champion` alias to the candidate if it passes the promotion gate.

    The gate: candidate and champion are scored on the same tickets; the candidate
    must match or beat the champion's macro-F1 (the first model must beat the
    majority baseline) and keep every class's recall above its floor.
    Exits with status 2 when the candidate is rejected.
    """
    from training.config import load_config
    from training.workflows import promote_task

    config = load_config(task, config_path)
    frame = _load_data(data, query, mapping, (), None, task) if data else None
    outcome = promote_task(task, config, _settings(), frame)
    verdict = "promoted" if outcome.decision.promote else "rejected"
    if as_json:
        click.echo(json.dumps({"task": task, "decision": verdict, "reasons": outcome.decision.reasons,
                               "candidate_version": outcome.candidate_version,
                               "champion_version": outcome.champion_version}))
    else:
        _echo_promotion(task, outcome, "evaluation tickets")
    if not outcome.decision.promote:
        sys.exit(2)


@main.command()
@click.option("--task", type=TASK_CHOICE, required=True, help="Which model to ask.")
@click.argument("texts", nargs=-1, required=True)
@click.option("--model", "model_uri", default=None, help="Model URI (default: the task's champion).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per text.")
@_fail_cleanly
def predict(task, texts, model_uri, as_json) -> None:
    """Predict the label of each TEXT (treated as a ticket body)."""
    import mlflow
    import pandas as pd

    from features.predictor import to_model_input
    from training import tracking

    settings = _settings()
    tracking.connect(settings)
    uri = model_uri or tracking.alias_uri(settings, task, tracking.CHAMPION)
    answers = mlflow.pyfunc.load_model(uri).predict(to_model_input(pd.DataFrame({"body": list(texts)})))
    for text, answer in zip(texts, answers.to_dict(orient="records")):
        if as_json:
            click.echo(json.dumps({"text": text, **answer}, default=float))
        else:
            review = "  (needs review)" if answer["needs_review"] else ""
            click.echo(f"{answer['label']}  {answer['confidence']:.2f}{review}  "
                       f"because: {', '.join(answer['top_features']) or '-'}  <- {text[:60]}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0 for all).")
@click.option("--port", type=click.IntRange(1, 65535), default=3000, show_default=True, help="HTTP port.")
@click.option("--reload-interval", type=click.FloatRange(min=0), default=None,
              help="Seconds between checks for a new champion (default: NIGHTDESK_SERVING_RELOAD_INTERVAL_S, 0 = off).")
def serve(host: str, port: int, reload_interval: float | None) -> None:
    """Start the prediction API (BentoML) on the champions of the configured registry.

    Runs `bentoml serve serving.service:Nightdesk` in place of this process, so its
    PID is the server's and Ctrl-C or SIGTERM stop it cleanly.
    """
    import shutil

    import serving

    settings = _settings()
    env = dict(os.environ)
    # Absolute: the server runs from the project folder, where a relative home would differ.
    env["NIGHTDESK_HOME"] = str(settings.home_dir)
    if reload_interval is not None:
        env["NIGHTDESK_SERVING_RELOAD_INTERVAL_S"] = str(reload_interval)
    project = Path(serving.__file__).resolve().parent.parent
    bentoml = shutil.which("bentoml", path=str(Path(sys.executable).parent)) or shutil.which("bentoml")
    command = [bentoml] if bentoml else [sys.executable, "-m", "bentoml"]
    command += ["serve", "serving.service:Nightdesk", "--host", host, "--port", str(port),
                "--working-dir", str(project)]
    click.echo(f"serving {settings.registry_uri} on http://{host}:{port}", err=True)
    os.execvpe(command[0], command, env)


DATABASE_URL_OPTION = click.option(
    "--database-url", default=None,
    help="The store (SQLAlchemy URL). Default: NIGHTDESK_DATABASE_URL, else sqlite:///$NIGHTDESK_HOME/nightdesk.db.")


def _store(database_url: str | None):
    from store import Store, StoreUnavailable

    try:
        return Store(database_url or _settings().database_url)
    except StoreUnavailable as error:
        raise click.ClickException(str(error)) from None


@main.group()
def keys() -> None:
    """API keys of the prediction service (sent as `Authorization: Bearer <key>`).

    Once any key exists the service refuses requests without one (a running service notices
    within NIGHTDESK_AUTH_REFRESH_S seconds, default 10). Roles: integration (predict), agent
    (predict, feedback, console), admin (everything, e.g. /models).
    """


@keys.command("create")
@click.option("--role", required=True, type=click.Choice(["integration", "agent", "admin"]),
              help="What the key may do: integration (predict), agent (+ feedback and console), admin (all).")
@click.option("--name", default=None, help="Who or what the key is for (shown by `keys list`).")
@DATABASE_URL_OPTION
def keys_create(role: str, name: str | None, database_url: str | None) -> None:
    """Create a key and print it once on stdout: only its hash is stored, it cannot be shown again."""
    token = _store(database_url).create_key(role, name)
    click.echo(f"created a {role} key{f' for {name}' if name else ''}; store it now, it is not shown again",
               err=True)
    click.echo(token)


@keys.command("list")
@DATABASE_URL_OPTION
def keys_list(database_url: str | None) -> None:
    """List keys: id, role, name, first characters of the token, creation and revocation time."""
    for key in _store(database_url).list_keys():
        revoked = f"  revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else ""
        click.echo(f"{key.id}\t{key.role}\t{key.name or '-'}\t{key.prefix}...\t"
                   f"{key.created_at:%Y-%m-%d %H:%M}{revoked}")


@keys.command("revoke")
@click.argument("key_id", type=int)
@DATABASE_URL_OPTION
def keys_revoke(key_id: int, database_url: str | None) -> None:
    """Revoke the key with id KEY_ID (see `keys list`); a running service drops it within
    NIGHTDESK_AUTH_REFRESH_S seconds (default 10)."""
    if not _store(database_url).revoke_key(key_id):
        raise click.ClickException(f"no active key with id {key_id}")
    click.echo(f"revoked key {key_id}", err=True)


@main.group()
def kb() -> None:
    """Help articles linked from acknowledgements: build and try the search index."""


@kb.command("index")
@click.option("--articles", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of Markdown help articles (searched recursively for *.md). "
                   "Default: the sample articles shipped in serving/defaults/kb.")
@click.option("--synonyms", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Synonyms YAML ('groups:' lists of interchangeable terms). Default: serving/defaults/synonyms.yaml.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Index file to write (replaced atomically). Default: NIGHTDESK_HOME/kb/index.joblib.")
@_fail_cleanly
def kb_index(articles: Path | None, synonyms: Path | None, out: Path | None) -> None:
    """Index the help articles for search (TF-IDF over words and character n-grams, plus synonyms).

    Re-run it whenever the articles or synonyms change: the index records a hash of
    them, and the service refuses a stale index with a message saying so.
    """
    from serving.kb import DEFAULT_ARTICLES_DIR, DEFAULT_SYNONYMS_FILE, KnowledgeBase, default_index_path

    knowledge_base = KnowledgeBase.build(articles or DEFAULT_ARTICLES_DIR, synonyms or DEFAULT_SYNONYMS_FILE)
    path = knowledge_base.save(out or default_index_path(_settings().home_dir))
    click.echo(f"indexed {len(knowledge_base)} articles from {knowledge_base.articles_dir} into {path} "
               f"(version {knowledge_base.source_hash[:12]})")


@kb.command("search")
@click.argument("text")
@click.option("--index", "index_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Index file (default: NIGHTDESK_HOME/kb/index.joblib).")
@click.option("-k", "k", type=click.IntRange(min=1), default=3, show_default=True, help="Most articles to return.")
@click.option("--json", "as_json", is_flag=True, help="Print the hits as a JSON list.")
@_fail_cleanly
def kb_search(text: str, index_path: Path | None, k: int, as_json: bool) -> None:
    """Show which help articles the index finds for TEXT (to check articles and synonyms)."""
    from serving.kb import KnowledgeBase, default_index_path

    hits = KnowledgeBase.load(index_path or default_index_path(_settings().home_dir)).search(text, k=k)
    if as_json:
        click.echo(json.dumps([hit.model_dump() for hit in hits]))
        return
    if not hits:
        click.echo("no article matches", err=True)
    for hit in hits:
        click.echo(f"{hit.score:.3f}  {hit.title}  <{hit.url}>")



def _corrections(database_url: str | None, task: str):
    from store import StoreUnavailable

    try:
        return _store(database_url).corrections_frame(task)
    except StoreUnavailable as error:
        raise click.ClickException(f"cannot read corrections: {error}") from None


@main.command()
@click.option("--task", type=TASK_CHOICE, required=True, help="Which model to retrain.")
@data_options
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Experiment config YAML (retrain.correction_weight, retrain.holdout_fraction, the gate).")
@DATABASE_URL_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the decision, versions and corrections as JSON.")
@_fail_cleanly
def retrain(task, data, query, mapping, text_columns, label_column, config_path, database_url, as_json) -> None:
    """Retrain from the historical tickets in --data plus the agents' corrections in the store.

    A correction overrides the ticket's label (the latest one wins), corrected tickets
    weigh more than bulk history, duplicates are dropped. Recent uncorrected tickets
    are held out in time order; candidate and champion are scored on them, and the
    candidate becomes champion only through the gate (macro-F1 not lower, every class
    above its recall floor, behavioural checks passed). Exits with status 2 when rejected.
    """
    from training.config import load_config
    from training.workflows import retrain_task

    config = load_config(task, config_path)
    frame = _load_data(data, query, mapping, text_columns, label_column, task)
    corrections = _corrections(database_url, task)
    stages = Stages(8, f"retrain {task}")
    try:
        outcome = retrain_task(frame, corrections, task, config, _settings(), source=str(data), progress=stages)
    finally:
        stages.close()
    promotion = outcome.promotion
    verdict = "promoted" if promotion.decision.promote else "rejected"
    if as_json:
        click.echo(json.dumps({"task": task, "decision": verdict, "reasons": promotion.decision.reasons,
                               "candidate_version": promotion.candidate_version,
                               "champion_version": promotion.champion_version, "run_id": outcome.training.run_id,
                               "corrections_applied": len(outcome.corrections["applied"]),
                               "corrections_max_id": outcome.corrections["max_id"], "counts": outcome.counts}))
    else:
        counts = outcome.counts
        click.echo(f"{task}: {counts['corrections_applied']:,} corrections applied "
                   f"({counts['labels_overridden']:,} labels overridden, {counts['tickets_added']:,} tickets added); "
                   f"trained v{promotion.candidate_version} on {outcome.training.train_rows:,} tickets")
        _echo_promotion(task, promotion, "held-out tickets")
    if not promotion.decision.promote:
        sys.exit(2)


def _echo_promotion(task: str, promotion, evaluated_on: str) -> None:
    """The gate's decision and its reasons, as `promote` and `retrain` print them."""
    verdict = "promoted" if promotion.decision.promote else "rejected"
    champion = f"v{promotion.champion_version}" if promotion.champion_version else "none"
    click.echo(f"{task}: candidate v{promotion.candidate_version} {verdict} "
               f"(champion was {champion}; {promotion.evaluation_rows:,} {evaluated_on})")
    for reason in promotion.decision.reasons:
        click.echo(f"  - {reason}")

if __name__ == "__main__":
    main()
