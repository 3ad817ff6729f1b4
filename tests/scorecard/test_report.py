"""The audit PDF: what it says, what it never says, tampering on its cover, and the command
giving the same document as the function the pages use."""

import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from pypdf import PdfReader

from drills.models import DrillRun
from scorecard import services
from scorecard.evidence import evidence_append
from scorecard.models import Check, Scorecard
from scorecard.report import audit_pdf
from tests.conftest import user_with_role

pytestmark = pytest.mark.django_db

SECRET = "pdf-secret-Pa55word"


def text_of(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture
def audited():
    """A SASL cluster with owned rows, evidence, a drill and a sign-off."""
    from scorecard.models import Cluster
    from tests.factories import OWNED_ROWS

    owner = user_with_role("olga", "operator")
    cluster = Cluster(name="payments", bootstrap_servers="10.1.2.3:9093", security_protocol="SASL_SSL",
                      sasl_mechanism="SCRAM-SHA-512", sasl_username="svc-scorecard")  # fmt: skip
    cluster.sasl_password = SECRET
    scorecard = services.cluster_register(cluster=cluster, rows=OWNED_ROWS)
    durability = scorecard.rows.get(key="durability")
    services.row_update(
        row=durability,
        owner="Storage team",
        owner_user=owner,
        rollback_condition="Stop when produce errors exceed 5 % over 30 s",
        rollback_max_error_rate=0.05,
        targets={"default": {"rpo_records": 0}},
    )
    for check in Check.objects.runnable().filter(row__scorecard=scorecard).select_related("row"):
        evidence_append(check=check, status="PASS", summary=f"{check.kind} fine", measurements={"ok": 1},
                        collected_by="celery@w")  # fmt: skip
    services.row_sign_off(row=durability, user=get_user_model().objects.get(username="olga"),
                          comment="Reviewed the acknowledged-write evidence", status="PASS")  # fmt: skip
    DrillRun.objects.create(
        cluster=cluster, scenario="broker_loss", state="done", outcome="passed", requested_by="olga",
        figures={"fault_at_s": 2.0, "write_rto_s": 4.25, "read_rto_s": 4.5, "rpo_acked_lost": 0},
        targets={"write_rto_s": {"value": 30, "source": "Client continuity row"}},
        finished_at=timezone.now(),
    )  # fmt: skip
    return Scorecard.objects.get(pk=scorecard.pk)


def period():
    now = timezone.now()
    return {"since": now - timedelta(days=1), "until": now + timedelta(minutes=1)}


def test_the_pdf_says_what_was_measured_and_never_a_secret(audited):
    pdf = audit_pdf(scorecards=[audited], generated_by="auditor", **period())
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.metadata.title == "Recovery readiness audit: payments" and reader.metadata.author == "auditor"
    assert len(reader.outline) >= 3  # bookmarks: contents, how to read, the cluster
    text = " ".join(text_of(pdf).split())
    for expected in (
        "Data durability", "Metadata recovery", "Client continuity", "Operational automation", "Cost sustainability",
        "Storage team", "Stop when produce errors exceed 5 % over 30 s", "max produce error rate 0.05",
        "RPO (acknowledged records lost) <= 0 records", "Write RTO", "4.25 s", "target <= 30 s",
        "olga at PASS", "Reviewed the acknowledged-write evidence", audited.head_hash[:24], "VERIFIED",
        "How to read this report", "page 1 of",
    ):  # fmt: skip
        assert expected in text, expected
    raw = pdf + text.encode()
    for secret in (SECRET, audited.cluster.sasl_password_token):
        assert secret.encode() not in raw


def test_tampering_is_reported_on_the_cover(audited):
    count = audited.head_count
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM scorecard_evidence WHERE scorecard_id = %s AND seq > %s", [audited.pk, count - 2])
    cover = " ".join(PdfReader(io.BytesIO(audit_pdf(scorecards=[audited], generated_by="a", **period())))
                     .pages[0].extract_text().split())  # fmt: skip
    assert (
        "THE EVIDENCE CHAIN IS BROKEN" in cover and f"the newest evidence #{count - 1} to #{count} is missing" in cover
    )
    with connection.cursor() as cursor:
        cursor.execute("UPDATE scorecard_evidence SET summary = 'rewritten' WHERE scorecard_id = %s AND seq = 1",
                       [audited.pk])  # fmt: skip
    updated = audit_pdf(scorecards=[audited], generated_by="a", **period())
    cover = " ".join(PdfReader(io.BytesIO(updated)).pages[0].extract_text().split())
    assert "THE EVIDENCE CHAIN IS BROKEN" in cover  # the tail, named first, is still missing
    assert "UNTRUSTED" in text_of(updated)


def test_the_command_and_the_function_give_the_same_document(audited, tmp_path):
    moments = period()
    out = tmp_path / "audit.pdf"
    since, until = moments["since"].isoformat(), moments["until"].isoformat()
    call_command("audit_pdf", "--cluster", "payments", "--since", since, "--until", until, "--by", "auditor",
                 "--output", str(out), stdout=io.StringIO())  # fmt: skip
    from_function = audit_pdf(scorecards=[audited], generated_by="auditor", **moments)

    def without_generation_time(pdf: bytes) -> str:
        return re.sub(r"Generated \S+ \S+ UTC", "Generated <time>", text_of(pdf))

    assert without_generation_time(out.read_bytes()) == without_generation_time(from_function)


def test_an_empty_period_says_so(audited):
    long_ago = timezone.now() - timedelta(days=400)
    text = text_of(audit_pdf(scorecards=[audited], since=long_ago, until=long_ago + timedelta(days=1),
                             generated_by="a"))  # fmt: skip
    assert "No evidence was collected in the period." in text and "No drill in the period." in text


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--cluster", "nope"], "no cluster named nope"),
        ([], "name at least one --cluster, or --all"),
        (["--all", "--since", "yesterday"], "is not a date"),
        (["--all", "--since", "2026-01-02", "--until", "2026-01-01"], "--since must be before --until"),
        (["--all", "--until", "0001-01-01"], "too early"),
    ],
)
def test_the_command_refuses_bad_arguments(audited, tmp_path, arguments, message):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=message):
        call_command("audit_pdf", *arguments, "--output", str(tmp_path / "x.pdf"), stdout=io.StringIO())


@pytest.mark.django_db(transaction=True)
def test_an_export_asked_on_the_page_is_built_by_a_worker_and_kept_with_its_hash(
    audited, role_client, start_private_worker, settings, client, tmp_path
):
    import hashlib

    from django.urls import reverse

    from scorecard.models import AuditExport
    from tests.conftest import wait_for

    worker = start_private_worker("exports")
    settings.AUDIT_EXPORT_QUEUE = worker.queue
    viewer = role_client("viewer", "vera")
    now = timezone.now()
    form = {"cluster": audited.cluster_id, "since": (now - timedelta(days=2)).strftime("%Y-%m-%d"),
            "until": (now + timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M")}  # fmt: skip
    assert viewer.post(reverse("scorecard-exports"), form).status_code == 302
    export = AuditExport.objects.get()

    def built():
        export.refresh_from_db()
        return export.state in ("done", "failed")

    wait_for(built, timeout=60, message="the audit PDF")
    assert export.state == "done", export.error
    response = viewer.get(reverse("scorecard-export-download", args=[export.pk]))
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert response["Content-Type"] == "application/pdf" and hashlib.sha256(body).hexdigest() == export.sha256
    assert "payments" in text_of(body) and "vera" in text_of(body)
    page = viewer.get(reverse("scorecard-exports")).content.decode()
    assert export.sha256 in page and "vera" in page
    assert client.get(reverse("scorecard-export-download", args=[export.pk])).status_code == 302  # anonymous
    # The command gives the same document for the same inputs, apart from the generation time.
    out = tmp_path / "command.pdf"
    call_command("audit_pdf", "--cluster", "payments", "--since", export.since.isoformat(), "--until",
                 export.until.isoformat(), "--by", "vera", "--output", str(out), stdout=io.StringIO())  # fmt: skip
    same = re.compile(r"Generated \S+ \S+ UTC")
    assert same.sub("", text_of(out.read_bytes())) == same.sub("", text_of(body))
    bad = viewer.post(reverse("scorecard-exports"), {**form, "until": "nonsense"}, follow=True)
    assert "needs a valid period" in bad.content.decode() and AuditExport.objects.count() == 1


def test_charts_are_vector_drawings_that_leave_unmeasured_points_out():
    from scorecard import svgchart

    chart = svgchart.Chart([svgchart.Line("write RTO", [0, 1, 2, 3], [3.0, None, 4.5, 5.0])], y_label="s", x_time=False)
    svg = svgchart.render(chart)
    assert svg.startswith("<svg") and svg.count('<path d="M') >= 3  # two runs of the line, and the axes
    assert "write RTO" in svg and "nan" not in svg.lower()
    assert svgchart.render(svgchart.Chart([svgchart.Line("none", [1, 2], [None, None])])) == ""
    hostile = svgchart.render(svgchart.Chart([svgchart.Line("<script>x</script>", [1], [1.0])], x_time=False))
    assert "<script>" not in hostile and "&lt;script&gt;" in hostile


def test_the_command_says_when_it_cannot_write(audited, tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="is not a directory"):
        call_command("audit_pdf", "--all", "--output", str(tmp_path / "missing" / "x.pdf"), stdout=io.StringIO())


def test_exports_lost_or_never_picked_up_are_failed_with_the_reason(audited, settings):
    from scorecard.models import AuditExport
    from scorecard.report import exports_expire

    old = timezone.now() - timedelta(seconds=settings.RUN_QUEUE_TIMEOUT_SECONDS + settings.CELERY_TASK_TIME_LIMIT + 5)
    lost = AuditExport.objects.create(requested_by="a", cluster_names="payments", since=old, until=old,
                                      state="running", started_at=old)  # fmt: skip
    never = AuditExport.objects.create(requested_by="a", cluster_names="payments", since=old, until=old,
                                       created_at=old)  # fmt: skip
    fresh = AuditExport.objects.create(requested_by="a", cluster_names="payments", since=old, until=old)
    assert exports_expire() == 2
    lost.refresh_from_db(), never.refresh_from_db(), fresh.refresh_from_db()
    assert (lost.state, lost.error) == ("failed", "the worker building it was lost")
    assert never.state == "failed" and "not picked up by a worker" in never.error and fresh.state == "queued"


def test_one_export_at_a_time_and_a_bounded_period(audited, role_client, django_capture_on_commit_callbacks):
    from django.urls import reverse

    from scorecard.models import AuditExport

    viewer = role_client("viewer", "vic")
    url = reverse("scorecard-exports")
    too_long = viewer.post(url, {"cluster": audited.cluster_id, "since": "2020-01-01", "until": "2026-01-01"},
                           follow=True)  # fmt: skip
    assert "at most 731 days" in too_long.content.decode() and not AuditExport.objects.exists()
    form = {"cluster": audited.cluster_id, "since": "2026-01-01", "until": "2026-02-01"}
    with django_capture_on_commit_callbacks():
        viewer.post(url, form)
    again = viewer.post(url, form, follow=True)
    assert "still being built" in again.content.decode() and AuditExport.objects.count() == 1


def test_a_log_chart_with_nothing_above_zero_draws_nothing():
    from scorecard import svgchart

    assert svgchart.render(svgchart.Chart([svgchart.Line("x", [1, 2], [0, -1], True)], log_y=True)) == ""
