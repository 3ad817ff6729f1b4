"""The production processes (scripts/serve: gunicorn, a worker) started as an operator would,
DEBUG off: static files served by the application under hashed, compressed names, pages
served, and plain HTTP with Secure cookies explained instead of a bare CSRF 403."""

import gzip
import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.conftest import ROOT, database_url_for_worker, unique_queue, wait_for

# Starting gunicorn and a worker is a burst of CPU: kept apart from the timing-sensitive drills.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("drill-fidelity")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served(tmp_path, django_db_blocker):
    with django_db_blocker.unblock():
        database_url = database_url_for_worker()
    port = free_port()
    env = {
        **os.environ,
        "SCORECARD_MODE": "production",
        "DEBUG": "false",
        "SECRET_KEY": "serve-test-secret-key-0123456789-abcdefghij",
        "SCORECARD_SECRET_KEYS": "bmV3LWtleS1mb3ItdGVzdHMtMzItYnl0ZXMtbG9uZyE=",
        "SCORECARD_EVIDENCE_KEY": "serve-test-evidence-key-0123456789-klmnopq",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15"),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SCORECARD_VAR_DIR": str(tmp_path),
        "BIND": f"127.0.0.1:{port}",
        "WORKER_QUEUES": unique_queue("serve"),
        "SERVE_BEAT": "0",
    }
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        ["scripts/serve"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )

    def listening():
        if process.poll() is not None:
            pytest.fail(f"scripts/serve exited: {(tmp_path / 'serve.log').read_text()[-3000:]}")
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    try:
        # Migrations and collectstatic's compression come first: minutes on a busy machine.
        wait_for(listening, timeout=180, message="gunicorn to listen")
        yield f"http://127.0.0.1:{port}", tmp_path
    finally:  # also when start-up failed: left running, the processes would load every later test
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        log.close()


def fetch(opener, url: str, data: dict | None = None, headers: dict | None = None):
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers or {})  # noqa: S310 (the test server)
    try:
        # A worker's first request loads the URLs (the API's schemas among them): on a machine
        # busy with the rest of the suite that took over 20 s once.
        response = opener.open(request, timeout=90)
    except urllib.error.HTTPError as error:
        response = error
    return response.status, dict(response.headers), response.read()


def test_the_production_processes_serve_static_files_and_pages_and_explain_plain_http(served):
    base, var = served
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    status, headers, body = fetch(opener, f"{base}/accounts/login/")
    page = body.decode()
    assert status == 200 and "logging in will fail" in page, page[:2000]
    assert headers["X-Frame-Options"] == "DENY" and "script-src 'self'" in headers["Content-Security-Policy"]
    # Static files: collected with content-hashed names, compressed, cached for ever.
    stylesheet = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', page).group(1)
    status, headers, body = fetch(opener, base + stylesheet, headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers.get("Content-Encoding") == "gzip"
    assert "max-age=315360000" in headers["Cache-Control"]
    assert b"--accent" in gzip.decompress(body)
    assert (var / "static" / "staticfiles.json").exists()
    # Over plain HTTP the Secure CSRF cookie never comes back: the refusal says why.
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = {"username": "nobody", "password": "wrong", "csrfmiddlewaretoken": token}
    status, _, body = fetch(opener, f"{base}/accounts/login/", form, headers={"Referer": f"{base}/accounts/login/"})
    assert status == 403 and "cookies are set for HTTPS only" in body.decode()
    assert fetch(opener, f"{base}/static/nothing-here.css")[0] == 404
