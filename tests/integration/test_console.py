"""The agent console in a real headless Chromium against the real served page.

The service (`bentoml serve`) records the predictions of a few sample tickets; an agent
opens /console, gives a key and an agent id, filters by task and queue, corrects one
label by choosing it in the row's dropdown, marks another ticket misrouted, and both
corrections are in the store.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect
from live_service import fresh_database, running_service, server_log, ticket_payloads

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
#: Vague tickets no model can be sure about: the console's default view lists them.
VAGUE = [{"id": f"VAGUE-{i}", "subject": subject, "body": body} for i, (subject, body) in enumerate([
    ("Question", "Hello, quick question, see below."), ("Hi", "Please call me back."),
    ("Follow-up", "Any news on this?")])]
SAMPLE_TICKETS = 12
TICKETS = SAMPLE_TICKETS + len(VAGUE)


@pytest.fixture(scope="module")
def console(trained_registry, tickets, tmp_path_factory):
    """The served console with recorded predictions: (base URL, agent key, store URL, predictions)."""
    from store import Store

    folder = tmp_path_factory.mktemp("console")
    home = trained_registry.copy_to(folder / "home").home  # the server may not write to the shared registry
    (folder / "logs").mkdir()
    with fresh_database("sqlite", folder) as database_url:
        store = Store(database_url)
        key = store.create_key("agent", "console-test")
        with running_service(home, database_url, folder / "logs") as base:
            headers = {"Authorization": f"Bearer {key}"}
            answer = httpx.post(f"{base}/predict_batch", json={"tickets": ticket_payloads(tickets, SAMPLE_TICKETS) + VAGUE},
                                headers=headers, timeout=60)
            assert answer.status_code == 200, answer.text
            deadline = time.monotonic() + 20
            while len(store.recent_predictions(limit=100)) < TICKETS:  # the recorder writes in the background
                assert time.monotonic() < deadline, server_log(folder / "logs")
                time.sleep(0.2)
            yield base, key, store, answer.json()["predictions"]
        store.close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, console):
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{console[0]}/console")
    yield page
    context.close()
    assert not errors, errors  # no script errors on the page


def sign_in(page, key: str, agent: str = "agent-17") -> None:
    page.fill("#api-key", key)
    page.fill("#agent-id", agent)
    page.press("#agent-id", "Enter")  # change events fire, the list reloads with the key


def rows(page):
    return page.locator("#predictions tbody tr")


def show_all(page) -> None:
    page.uncheck("#only-review")
    expect(rows(page)).to_have_count(TICKETS)


def option_values(row) -> list[str]:
    return [option.get_attribute("value") for option in row.locator("select.correction option").all()]


def test_the_page_asks_for_a_key_and_then_lists_the_flagged_predictions(page, console):
    _, key, store, _ = console
    # Keys exist, so the data needs one: the page says so instead of failing silently.
    expect(page.locator("#status")).to_have_class("error")
    assert "401" in page.text_content("#status")
    sign_in(page, key)
    expect(page.locator("#status")).to_contain_text("(category)")
    expect(page.locator("#status")).not_to_have_class("error")
    # Flagged only (the default): every row needs review or is at most 60 % confident.
    for row in rows(page).all():
        predicted = row.locator("td.predicted")
        confidence = int(re.search(r"(\d+)%", predicted.text_content()).group(1))
        assert predicted.locator(".review").count() == 1 or confidence <= 60
    flagged = len(store.recent_predictions(task="category", only_review=True, max_confidence=0.6))
    assert 0 < flagged < TICKETS and rows(page).count() == flagged
    # Reload keeps the agent signed in (localStorage).
    page.reload()
    assert page.input_value("#agent-id") == "agent-17" and page.input_value("#api-key") == key


def test_filters_by_task_and_queue(page, console):
    _, key, _, predictions = console
    sign_in(page, key)
    show_all(page)
    assert rows(page).count() == TICKETS
    page.select_option("#task", "urgency")
    expect(page.locator("#status")).to_contain_text("(urgency)")
    assert sorted(option_values(rows(page).first)) == ["critical", "high", "low", "medium"]

    queues = [p["routing"]["queue"] for p in predictions]
    queue = max(set(queues), key=queues.count)
    page.fill("#queue", queue)
    page.press("#queue", "Enter")
    expect(rows(page)).to_have_count(queues.count(queue))
    assert set(rows(page).locator("td.queue").all_text_contents()) == {queue}


def test_one_choice_in_the_dropdown_stores_the_correction(page, console):
    _, key, store, _ = console
    sign_in(page, key, agent="agent-42")
    show_all(page)
    row = rows(page).first
    prediction_id = row.get_attribute("data-prediction-id")
    predicted = row.locator("td.predicted .label").text_content()
    other = next(value for value in option_values(row) if value != predicted)

    row.locator("select.correction").select_option(other)  # the one click

    row.locator("td.saved", has_text="(created)").wait_for()
    stored = store.corrections_frame("category")
    mine = stored[(stored["prediction_id"] == prediction_id) & (stored["agent_id"] == "agent-42")]
    assert mine[["label", "original_label", "misrouted"]].values.tolist() == [[other, predicted, False]]


def test_misrouted_in_one_click(page, console):
    _, key, store, _ = console
    sign_in(page, key, agent="agent-7")
    show_all(page)
    row = rows(page).nth(1)
    prediction_id = row.get_attribute("data-prediction-id")

    row.locator("button.misrouted").click()

    row.locator("td.saved", has_text="misrouted").wait_for()
    stored = store.corrections_frame("category")
    mine = stored[(stored["prediction_id"] == prediction_id) & (stored["agent_id"] == "agent-7")]
    assert mine["misrouted"].tolist() == [True]


def test_a_key_without_the_agent_role_gets_a_clear_message(page, console):
    """An integration key may predict but not read or correct predictions: the page says why."""
    _, _, store, _ = console
    integration_key = store.create_key("integration", "a crm")
    before = len(store.corrections_frame())
    sign_in(page, integration_key)
    expect(page.locator("#status")).to_contain_text("403")  # it may not even read the list
    assert "403" in page.text_content("#status")
    assert len(store.corrections_frame()) == before
