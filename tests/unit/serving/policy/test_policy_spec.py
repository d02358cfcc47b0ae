"""Loading a policy file: the example loads, and every mistake names the file, the key path and the problem."""

from __future__ import annotations

import copy

import pytest
import yaml

from serving.policy import PolicyError, default_policy_path, load_policy, load_policy_spec


def test_the_shipped_example_has_three_regions_and_two_tiers():
    policy = load_policy(default_policy_path())
    assert set(policy.spec.teams) == {"apac", "emea", "americas"}
    assert set(policy.spec.tiers) == {"premium", "standard"}
    assert policy.queue_teams["product"] == ("emea", "americas")  # follow-the-sun order kept


def _write(tmp_path, raw) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw), encoding="utf-8")
    return path


def _error(tmp_path, raw) -> str:
    path = _write(tmp_path, raw)
    with pytest.raises(PolicyError) as caught:
        load_policy_spec(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    return message


def _edited(example_raw, edit) -> dict:
    raw = copy.deepcopy(example_raw)
    edit(raw)
    return raw


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda r: r["teams"]["emea"].update(hourz=r["teams"]["emea"].pop("hours")),
     "teams.emea.hourz: unknown key"),
    (lambda r: r["teams"]["apac"].update(timezone="Mars/Olympus"),
     "teams.apac.timezone: 'Mars/Olympus' is not an IANA time zone name"),
    (lambda r: r["teams"]["emea"].update(hours={"mon-fri": ["8-17"]}),
     "teams.emea.hours: '8-17' is not a range like '08:00-17:30'"),
    (lambda r: r["teams"]["emea"].update(hours={"weekdays": ["08:00-17:00"]}),
     "teams.emea.hours: 'weekdays' is not a day spec"),
    (lambda r: r["teams"]["emea"].update(hours={"mon": ["08:00-12:00", "11:00-17:00"]}),
     "teams.emea.hours: ranges on mon overlap"),
    (lambda r: r["teams"]["americas"]["holidays"].update(country="XX"),
     "teams.americas.holidays: country 'XX' has no holiday calendar"),
    (lambda r: r["queues"]["product"].update(teams=["emea", "latam"]),
     "queues.product.teams: unknown team 'latam'"),
    (lambda r: r["categories"].update(refunds="money"),
     "categories.refunds: unknown queue 'money'"),
    (lambda r: r["sla"]["standard"].pop("P4"),
     "sla.standard: no targets for P4"),
    (lambda r: r["sla"]["premium"]["P2"].update(first_response="4 hours"),
     "sla.premium.P2.first_response: '4 hours' is not a duration"),
    (lambda r: r["sla"]["premium"]["P2"].update(first_response="9h"),
     "sla.premium.P2: first_response is longer than resolution"),
    (lambda r: r["priority"]["signals"]["outage"].update(pattern="(down"),
     "priority.signals.outage.pattern: pattern is not a valid regular expression"),
    (lambda r: r["priority"]["urgency"][0].update(min_probability=1.5),
     "priority.urgency.0.min_probability: Input should be less than or equal to 1"),
    (lambda r: r["confidence"]["tasks"]["category"].update(suggest=0.9),
     "confidence.tasks.category: thresholds must satisfy suggest <= preselect <= auto_apply"),
    (lambda r: r["acknowledgement"].update(template="Hi {customer_name}"),
     "acknowledgement.template: unknown placeholder(s) ['customer_name']"),
    (lambda r: r["follow_the_sun"].update(order=["apac", "emea"]),
     "follow_the_sun.order: teams ['americas'] are missing"),
    (lambda r: r["tiers"]["standard"]["customer_tiers"].append("Enterprise"),
     "tiers.standard.customer_tiers: 'Enterprise' is also in tier 'premium'"),
    (lambda r: r.pop("review_queue"),
     "review_queue: Field required"),
])
def test_a_mistake_is_named_by_its_key_path(tmp_path, example_raw, edit, expected):
    assert expected in _error(tmp_path, _edited(example_raw, edit))


def test_several_mistakes_are_reported_together(tmp_path, example_raw):
    def edit(raw):
        raw["teams"]["apac"]["timezone"] = "Nowhere"
        raw["on_call"]["ack_timeout_minutes"] = 0
    message = _error(tmp_path, _edited(example_raw, edit))
    assert "teams.apac.timezone" in message and "on_call.ack_timeout_minutes" in message


def test_yaml_syntax_errors_give_the_line(tmp_path):
    assert "not valid YAML (line 2, column 7)" in _error(tmp_path, "name: x\nteams:\tbad: [\n")


def test_a_file_that_is_not_a_mapping_or_missing_is_refused(tmp_path):
    assert "is a mapping of keys" in _error(tmp_path, "- just\n- a list\n")
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        load_policy_spec(tmp_path / "absent.yaml")
