"""Helpers of the policy tests: inline policy variations and predictions."""

from __future__ import annotations

import copy
from datetime import date

from serving.policy import compile_policy
from serving.policy.spec import PolicySpec
from serving.schemas import TaskPrediction


def make_policy(raw: dict, **overrides):
    """The policy from ``raw`` with top-level keys replaced (deep-copied, compiled for 2026)."""
    data = copy.deepcopy(raw)
    data.update(copy.deepcopy(overrides))
    return compile_policy(PolicySpec.model_validate(data), today=date(2026, 6, 1))


def prediction(probabilities: dict[str, float]) -> TaskPrediction:
    label = max(probabilities, key=probabilities.get)
    return TaskPrediction(label=label, confidence=probabilities[label], needs_review=False,
                          probabilities=probabilities, top_features=[], truncated=False,
                          model_name="m", model_version="1")


def urgency(critical: float = 0.0, high: float = 0.0, medium: float = 0.0) -> TaskPrediction:
    return prediction({"critical": critical, "high": high, "medium": medium,
                       "low": round(1.0 - critical - high - medium, 6)})


def category(label: str, confidence: float) -> TaskPrediction:
    return prediction({label: confidence, "other": round(1.0 - confidence, 6)})
