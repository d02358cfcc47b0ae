"""Ticket validation: every refusal names its field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from serving.schemas import TicketIn
from serving.scoring import check_limits


def _fields(error: ValidationError) -> set[str]:
    return {str(part) for e in error.errors() for part in e["loc"]}


def test_a_minimal_ticket_is_accepted():
    ticket = TicketIn(id="T-1", body="Printer on fire")
    assert ticket.subject == "" and ticket.channel is None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"id": "T-1"}, "body"),
        ({"id": "T-1", "subject": "  ", "body": "\n"}, "body"),
        ({"id": 7, "body": "x"}, "id"),
        ({"id": "T-1", "body": ["x"]}, "body"),
        ({"id": "T-1", "body": "x", "priority": "high"}, "priority"),
        ({"id": "T-1", "body": "x", "created_at": "2026-01-05T02:08:17"}, "created_at"),
        ({"id": "T-1", "body": "x", "created_at": "yesterday"}, "created_at"),
        ({"id": "T-1", "body": "x", "created_at": "2026-02-30T00:00:00Z"}, "created_at"),
        ({"id": "T-1", "body": "x", "created_at": 1767578897}, "created_at"),
        ({"id": "T-1", "body": "x", "customer_timezone": "Mars/Olympus_Mons"}, "customer_timezone"),
        ({"id": "T-1", "body": "x", "customer_timezone": "../../etc/passwd"}, "customer_timezone"),
        ({"id": "T-1", "body": "x" * 1_000_001}, "body"),
        ({"body": "x"}, "id"),
    ],
)
def test_bad_tickets_are_refused_naming_the_field(payload, field):
    with pytest.raises(ValidationError) as caught:
        TicketIn.model_validate(payload)
    assert field in _fields(caught.value)


def test_created_at_keeps_its_offset_as_iso_text():
    ticket = TicketIn(id="T-1", body="x", created_at="2026-01-05T02:08:17+01:00", customer_timezone="Europe/Berlin")
    assert ticket.as_row()["created_at"] == "2026-01-05T02:08:17+01:00"


def test_configurable_limits_name_the_field_and_the_batch():
    long_body = TicketIn(id="T-1", body="x" * 50)
    with pytest.raises(ValidationError) as caught:
        check_limits([long_body, long_body], max_field_chars=10, max_tickets=1, prefix=("tickets",))
    locs = [tuple(e["loc"]) for e in caught.value.errors()]
    assert ("tickets",) in locs and ("tickets", 0, "body") in locs
    check_limits([long_body], max_field_chars=50)  # at the limit is fine
