"""Policy fixtures: the shipped example policy (raw and compiled)."""

from __future__ import annotations

import os

import pytest
import yaml
from hypothesis import HealthCheck, settings
from policy_helpers import make_policy

from serving.policy import default_policy_path

# Modest example counts keep the default run fast; raise them for a deeper search:
# NIGHTDESK_HYPOTHESIS_EXAMPLES=2000 pytest tests/unit/serving/policy
settings.register_profile("policy", max_examples=int(os.environ.get("NIGHTDESK_HYPOTHESIS_EXAMPLES", "60")),
                          deadline=None,
                          # Shared 2-core machines: slow generation is load, not a bug in the test.
                          suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="session")
def example_raw() -> dict:
    return yaml.safe_load(default_policy_path().read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def example(example_raw):
    return make_policy(example_raw)
