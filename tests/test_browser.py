"""The pages in a real browser (Playwright driving Debian's Chromium) against the live server:
log in, the overview, a scorecard, its trend charts drawn by plotly, a comparison, and a
sandbox drill started from its page, followed live to its figures. No console errors."""

import pytest
from django.urls import reverse

from scorecard.evidence import evidence_append
from scorecard.models import Actuator
from tests.conftest import user_with_role
from tests.factories import check_of, register

# Chromium is heavy: never beside the timing-sensitive drill tests (they share this group).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("drill-fidelity")]

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "browser-test-password-1"


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are
    # still synchronous, one at a time.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    page = context.new_page()
    page.errors = []
    page.on("console", lambda message: message.type == "error" and page.errors.append(message.text))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


def log_in(page, username: str) -> None:
    user = user_with_role(username, "operator")
    user.set_password(PASSWORD)
    user.save()
    page.goto(reverse("login"))
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def test_an_operator_reads_the_pages_and_follows_a_drill_live(page, private_sandbox, start_private_worker):
    worker = start_private_worker("browser")
    sandbox = register(
        name="sandbox-eu",
        environment="production",
        bootstrap=private_sandbox.bootstrap,
        worker_queue=worker.queue,
        expected_brokers=3,
        drills_allowed=True,
        actuator=Actuator.SANDBOX,
        sandbox_control=private_sandbox.control_path,
    )
    register(name="candidate", environment="candidate")
    for p99 in (4.0, 9.5, 6.1):
        evidence_append(check=check_of(sandbox, "ack_write"), status="PASS", summary=f"p99 {p99} ms",
                        measurements={"produce_ms_p99": p99}, collected_by="celery@test")  # fmt: skip
    log_in(page, "olga")

    # The overview: both clusters, statuses in words, what needs attention.
    assert page.get_by_role("heading", name="Overview").is_visible()
    assert page.locator("table.overview").get_by_text("sandbox-eu").is_visible()
    assert page.get_by_role("heading", name="Needs attention").is_visible()
    page.select_option("select[name=environment]", "candidate")
    page.click("form.filters button")
    assert page.locator("table.overview tbody tr").count() == 1

    # A scorecard and its trends: plotly draws the charts from the app's own static files.
    page.goto(reverse("scorecard-detail", args=[sandbox.cluster_id]))
    assert page.get_by_role("heading", name="sandbox-eu").is_visible()
    page.get_by_role("link", name="Trends").click()
    page.wait_for_selector("#chart-produce_p99 .main-svg")
    assert page.locator("#chart-produce_p99 .scatterlayer .trace").count() == 1

    # Compare two clusters.
    page.goto(reverse("scorecard-compare"))
    for name in ("sandbox-eu", "candidate"):
        page.get_by_label(name).check()
    page.get_by_role("button", name="Compare").click()
    assert page.locator("table.compare thead th").count() == 2

    # A drill started from its page, followed live, then its figures.
    page.goto(reverse("drills-list", args=[sandbox.cluster_id]))
    page.select_option("#id_scenario", "leader_change")
    for field, value in {"fault_seconds": "2", "baseline_seconds": "2", "settle_seconds": "2"}.items():
        page.fill(f"#id_{field}", value)
    page.fill("#id_confirm", "sandbox-eu")
    page.get_by_role("button", name="Start the drill").click()
    page.wait_for_url("**/drills/*/")
    from playwright.sync_api import expect

    expect(page.locator("#phase")).not_to_have_text("queued", timeout=60_000)  # live progress
    page.wait_for_selector("text=Figures", timeout=90_000)
    assert page.locator("#state").inner_text() in ("PASSED", "FAILED")
    assert page.errors == [], page.errors


def test_a_live_drill_page_whose_session_ended_asks_to_log_in_again(page):
    from django.contrib.sessions.models import Session

    from drills.models import DrillRun

    cluster = register(name="prod", drills_allowed=True, actuator=Actuator.SANDBOX, sandbox_control="/tmp/x").cluster
    run = DrillRun.objects.create(cluster=cluster, scenario="broker_loss", state="running", requested_by="olga")
    log_in(page, "olga")
    page.goto(reverse("drills-detail", args=[run.pk]))
    notice = page.locator("#connection")
    assert notice.is_hidden()
    Session.objects.all().delete()  # the session expired, or an administrator ended it
    notice.get_by_text("Your session has ended.").wait_for(timeout=15_000)
    link = notice.get_by_role("link", name="Log in again")
    assert link.get_attribute("href") == f"/accounts/login/?next=%2Fdrills%2F{run.pk}%2F"
    assert "Lost contact" not in notice.inner_text()
    assert page.errors == []
