"""The web server (gunicorn on config.wsgi) killed and restarted while a browser follows a live
drill: the page says it lost the server and is retrying, then carries on by itself to the
drill's end. The drill, run by its worker, loses nothing."""

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.urls import reverse

from drills import services as drill_services
from drills.models import DrillRun, DrillTimeline
from scorecard.models import Actuator, Evidence
from tests.conftest import ROOT, celery_env, user_with_role
from tests.factories import register
from tests.restarts.conftest import free_port, kill_group, wait_port

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("drill-fidelity"),  # Chromium: never beside the timing-sensitive drills
    pytest.mark.usefixtures("requesters"),
]

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "web-restart-password-1"


class Gunicorn:
    def __init__(self, env: dict):
        self.env, self.port, self.process = env, free_port(), None
        self.log_path = Path(tempfile.mkdtemp(prefix="web-")) / "gunicorn.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        argv = [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi:application", "--bind",
                f"127.0.0.1:{self.port}", "--workers", "1", "--threads", "4"]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_port(self.port, up=True, timeout=60, what="gunicorn")

    def kill(self) -> None:
        """SIGKILL the arbiter and its worker process together (a crash, or a host restart)."""
        if self.process and self.process.poll() is None:
            kill_group(self.process)
        wait_port(self.port, up=False, timeout=30, what="the killed gunicorn")


@pytest.fixture
def gunicorn(django_db_blocker):
    server = Gunicorn({**celery_env(django_db_blocker), "ALLOWED_HOSTS": "127.0.0.1"})
    server.start()
    yield server
    server.kill()


@pytest.fixture
def page(monkeypatch, gunicorn):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"]
        )
        page = browser.new_context(base_url=gunicorn.url).new_page()
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        yield page
        browser.close()


def test_a_web_restart_during_a_live_drill_page_is_announced_and_the_page_recovers_by_itself(
    page, gunicorn, private_sandbox, start_private_worker
):
    from playwright.sync_api import expect

    worker = start_private_worker("web")
    cluster = register(name="sandbox-eu", bootstrap=private_sandbox.bootstrap, worker_queue=worker.queue,
                       expected_brokers=3, drills_allowed=True, actuator=Actuator.SANDBOX,
                       sandbox_control=private_sandbox.control_path).cluster  # fmt: skip
    user = user_with_role("olga", "operator")
    user.set_password(PASSWORD)
    user.save()
    page.goto(reverse("login"))
    page.fill("#id_username", "olga")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")

    params = {"baseline_seconds": 2, "fault_seconds": 12, "settle_seconds": 2}
    run = drill_services.drill_run_start(cluster=cluster, scenario="broker_loss", params=params, requested_by="olga")
    page.goto(reverse("drills-detail", args=[run.pk]))
    expect(page.locator("#phase")).to_have_text("fault", timeout=60_000)
    notice = page.locator("#connection")
    assert notice.is_hidden()

    gunicorn.kill()
    expect(notice).to_contain_text("Lost contact with the server", timeout=15_000)
    expect(notice).to_contain_text("retrying")
    seen = page.locator("#elapsed").inner_text()
    gunicorn.start()

    expect(notice).to_be_hidden(timeout=30_000)
    assert page.locator("#elapsed").inner_text() != seen, "progress moved on after the restart"
    # The drill's end, followed without anyone reloading: the page shows its figures.
    page.wait_for_selector("text=Figures", timeout=60_000)
    run.refresh_from_db()
    assert (run.state, run.outcome) == ("done", "passed"), (run.error, run.figures)
    assert page.locator("#state").inner_text() == "PASSED"
    assert DrillTimeline.objects.filter(run=run).count() == 1
    assert Evidence.objects.filter(measurements__drill_run=run.pk, row_key="durability").count() == 1
    assert all(b["up"] for b in private_sandbox.control.call("status")["brokers"])
    assert page.errors == [], page.errors
    assert DrillRun.objects.filter(cluster=cluster).count() == 1
