"""The form in a real browser: keyboard only, JavaScript off, and checked by axe-core.

The app runs under uvicorn as in production (``intake http``); the browser is Debian's
chromium driven by Playwright. What is checked is what a person would notice: that every
control can be reached and used from the keyboard in a sensible order, that focus can
always be seen, that errors are listed at the top and take you to the field, that what
they typed is shown back as text, and that axe-core finds no serious or critical problem.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from playwright.sync_api import Browser, Dialog, Page, sync_playwright

from gateway.settings import Settings
from tests.browser import axe_violations, burst_worker, focused, launch, live_server
from tests.conftest import Relay, feed_records
from tests.test_web_form import PNG

TAB_ORDER = [
    "skip-link",
    "name",
    "contact",
    "email",
    "phone",
    "address",
    "rep_name",
    "rep_relationship",
    "rep_email",
    "rep_phone",
    "details",
    "incident_day",
    "incident_month",
    "incident_year",
    "outcome",
    "support",
    "attachments",
    "button",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def site(settings: Settings, connection: redis.Redis) -> Iterator[str]:
    with live_server(settings) as base_url:
        yield base_url


def no_dialogs(page: Page) -> list[str]:
    """Collects any alert() that runs: there must be none."""
    seen: list[str] = []

    def record(dialog: Dialog) -> None:
        seen.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    return seen


def test_a_complaint_sent_with_the_keyboard_alone_and_javascript_off(
    browser: Browser,
    site: str,
    settings: Settings,
    connection: redis.Redis,
    relay: Relay,
    tmp_path: Path,
) -> None:
    photo = tmp_path / "damp corner.png"
    photo.write_bytes(PNG)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(site)
    typed = {
        "name": "Sam Taylor",
        "email": "sam.taylor@example.net",
        "details": "Black mould behind the wardrobe again. It smells.",
        "incident_day": "2",
        "incident_month": "11",
        "incident_year": "2026",
        "support": "Large print letters, please.",
    }
    visited = []
    for expected in TAB_ORDER:
        page.keyboard.press("Tab")
        visited.append(focused(page))
        if expected == "contact":
            page.keyboard.press("Space")  # choose the first way of contact: email
        elif expected == "attachments":
            # The file picker is the system's own dialog, outside the page: choose the file
            # for the focused control as a person would there, and carry on from the keyboard.
            page.locator(":focus").set_input_files(str(photo))
        elif expected in typed:
            page.keyboard.type(typed[expected])
    assert visited == TAB_ORDER  # a sensible order, the honeypot never reached
    with page.expect_navigation():
        page.keyboard.press("Enter")

    assert page.locator("h1").inner_text() == "Complaint sent"
    reference = page.locator(".reference").inner_text()
    assert re.fullmatch(r"CX-\d{4}-\d{6}", reference)
    assert "contact you by" in page.locator("main").inner_text()
    context.close()

    burst_worker(settings)  # Playwright's event loop holds this thread: a worker process
    [record] = feed_records(connection)
    assert record.reference == reference
    assert record.customer.name == "Sam Taylor"
    assert record.customer.preferred_contact == "email"
    assert record.text == typed["details"]
    assert record.customer.support_needs == typed["support"]
    assert [a.filename for a in record.attachments] == ["damp corner.png"]
    [ack] = relay.wait_for(1)
    assert reference in ack["Subject"]


def test_errors_are_listed_at_the_top_and_take_you_to_the_field(
    browser: Browser, site: str
) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(site)
    page.locator("#email").fill("not an address")
    with page.expect_navigation():
        page.locator("button").press("Enter")

    assert page.title().startswith("Error: ")
    assert focused(page) == "error-summary"  # the summary is read out first
    links = page.locator(".error-summary a")
    targets = [str(href).lstrip("#") for href in links.evaluate_all("ls => ls.map(l => l.hash)")]
    assert targets == ["name", "contact", "email", "details"]
    for index, target in enumerate(targets):
        links.nth(index).press("Enter")
        assert focused(page) == target
        error = page.locator(f"#{target}-error")
        assert error.is_visible()
    assert page.locator("#email").input_value() == "not an address"
    context.close()


def test_focus_is_always_visible(browser: Browser, site: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(site)
    style = (
        "el => { const s = getComputedStyle(el); "
        "return [s.outlineStyle, s.outlineWidth, s.outlineColor, s.boxShadow, "
        "s.backgroundColor, s.color].join('|'); }"
    )
    for expected in TAB_ORDER:
        page.keyboard.press("Tab")
        assert focused(page) == expected
        element = page.locator(":focus").element_handle()
        assert element is not None
        with_focus = element.evaluate(style)
        element.evaluate("el => el.blur()")
        without_focus = element.evaluate(style)
        element.focus()
        assert with_focus != without_focus, f"no visible focus on {expected}"
    context.close()


def test_axe_finds_no_serious_or_critical_problem_on_any_page(browser: Browser, site: str) -> None:
    context = browser.new_context(bypass_csp=True)  # the pages allow no script: axe needs one
    page = context.new_page()
    page.goto(site)
    assert axe_violations(page) == [], "the empty form"

    with page.expect_navigation():
        page.locator("button").click()
    assert page.title().startswith("Error: ")
    assert axe_violations(page) == [], "the form with errors"

    page.goto(site)
    page.locator("#name").fill("Sam Taylor")
    page.locator("#contact-phone").check()
    page.locator("#phone").fill("07700 900123")
    page.locator("#details").fill("The front door lock is broken.")
    with page.expect_navigation():
        page.locator("button").click()
    assert page.locator("h1").inner_text() == "Complaint sent"
    assert axe_violations(page) == [], "the confirmation page"
    context.close()


def test_script_typed_into_the_form_never_runs(browser: Browser, site: str) -> None:
    context = browser.new_context()  # JavaScript on: anything injected would run
    page = context.new_page()
    alerts = no_dialogs(page)
    page.goto(site)
    name = "<script>alert('name')</script>"
    details = '</textarea><script>alert("details")</script><img src=x onerror="alert(3)">'
    page.locator("#name").fill(name)
    page.locator("#details").fill(details)
    page.locator("#email").fill('"><svg onload=alert(4)>')
    page.locator("#contact").check()
    with page.expect_navigation():
        page.locator("button").click()
    assert page.title().startswith("Error: ")
    assert page.locator("#name").input_value() == name
    assert page.locator("#details").input_value() == details
    assert page.locator("script").count() == 0 and page.locator("img").count() == 0

    page.locator("#email").fill("sam.taylor@example.net")
    with page.expect_navigation():
        page.locator("button").click()
    assert page.locator("h1").inner_text() == "Complaint sent"
    assert alerts == []
    context.close()
