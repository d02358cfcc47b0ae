"""Round-the-clock routing policy: YAML spec, business-hours calendars, SLA and the decision.

Pure functions over a ``Policy`` compiled once at load; files are read only by
``load_policy``.
"""

from serving.policy.compiled import Policy, compile_policy, default_policy_path, load_policy
from serving.policy.decide import RoutingDecision, assess, deadlines, decide, decide_many, reassess, staff
from serving.policy.spec import ACTIONS, PRIORITIES, PolicyError, PolicySpec, load_policy_spec

__all__ = [
    "ACTIONS", "PRIORITIES", "Policy", "PolicyError", "PolicySpec", "RoutingDecision", "assess", "compile_policy",
    "deadlines", "decide", "decide_many", "default_policy_path", "load_policy", "load_policy_spec", "reassess", "staff",
]
