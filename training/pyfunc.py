"""The MLflow pyfunc face of a ``TicketClassifier``.

Every model kind is logged behind this one interface: a DataFrame of tickets in
(named columns), one row per ticket out with label, confidence, needs_review,
probabilities and top features.
"""

from __future__ import annotations

import joblib
import mlflow.pyfunc
import pandas as pd

CLASSIFIER_ARTIFACT = "classifier"
#: Transformer kinds only: the folder with tokenizer, encoder weights and ONNX file.
NETWORK_ARTIFACT = "network"


class TicketPyfuncModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        self.classifier = joblib.load(context.artifacts[CLASSIFIER_ARTIFACT])
        if NETWORK_ARTIFACT in context.artifacts:
            self.classifier.attach(context.artifacts[NETWORK_ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.classifier.predict_frame(model_input)
