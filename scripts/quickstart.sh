#!/usr/bin/env bash
# The main job on the embedded default: a generated sample of synthetic tickets,
# a SQLite MLflow store under NIGHTDESK_HOME (default ./.nightdesk), three models
# trained, gated and promoted, then a few predictions.
set -euo pipefail
export NIGHTDESK_HOME="${NIGHTDESK_HOME:-.nightdesk}"
sample="$NIGHTDESK_HOME/sample/tickets.csv"

nightdesk data sample --rows "${ROWS:-5000}" --out "$sample"
nightdesk data validate --data "$sample" | head -n 3
for task in urgency category sentiment; do
  nightdesk train --task "$task" --data "$sample"
  nightdesk promote --task "$task" || echo "($task: candidate not promoted; see the reasons above)"
done
for task in urgency category sentiment; do
  nightdesk predict --task "$task" \
    "URGENT: our production database is down and all users are locked out" \
    "How do I change the e-mail address on my account? Thanks!"
done
echo
echo "MLflow store: $NIGHTDESK_HOME/mlflow.db (browse with: mlflow ui --backend-store-uri sqlite:///$NIGHTDESK_HOME/mlflow.db)"
