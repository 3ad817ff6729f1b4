"""Readiness cannot be produced by one person: the hostile sequence of the governance issue,
sign-off and its lapse, and the audit trail of changes."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from scorecard import selectors
from scorecard.evidence import evidence_append
from scorecard.models import AuditEvent, Check, Cluster, SignOff
from tests.conftest import user_with_role
from tests.factories import register

pytestmark = pytest.mark.django_db


def view_of(scorecard):
    (view,) = selectors.scorecard_views(scorecards=[scorecard])
    return view


def system_evidence(scorecard, status="PASS"):
    """What workers append: one piece of evidence per runnable check."""
    for check in Check.objects.runnable().filter(row__scorecard=scorecard).select_related("row"):
        evidence_append(check=check, status=status, summary="probe", measurements={}, collected_by="celery@w")


def test_the_ready_faking_sequence_ends_not_ready(role_client):
    """An operator tries everything the issue's hostile user did; then an administrator tries
    alone. Neither makes the scorecard READY: only the system's evidence and the owners'
    sign-off do."""
    scorecard = register(name="prod")
    cluster = scorecard.cluster
    mallory = role_client("operator", "mallory")
    user_with_role("someone", "operator")
    # Register and edit clusters, enable drills, switch to an administrator's command actuator.
    form = {"name": "fake", "bootstrap_servers": "127.0.0.1:1", "security_protocol": "PLAINTEXT", "worker_queue": "q"}
    assert mallory.post(reverse("scorecard-cluster-new"), form).status_code == 403
    edit = {**form, "name": "prod", "drills_allowed": "on", "actuator": "command"}
    assert mallory.post(reverse("scorecard-cluster-edit", args=[cluster.pk]), edit).status_code == 403
    # Fill in owners on rows mallory does not own.
    for row in scorecard.rows.all():
        url = reverse("scorecard-row-edit", args=[row.pk])
        assert mallory.post(url, {"owner": "mallory", "rollback_condition": "none"}).status_code == 403
    # Mark every check NOT APPLICABLE: each stays a request until someone else approves it.
    for check in Check.objects.filter(row__scorecard=scorecard):
        url = reverse("scorecard-check-applicability", args=[check.pk])
        assert mallory.post(url, {"reason": "does not apply"}).status_code == 302
        assert mallory.post(reverse("scorecard-check-applicability-approve", args=[check.pk])).status_code == 403
    assert not Check.objects.filter(row__scorecard=scorecard, not_applicable=True).exists()
    # Sign off rows mallory does not own.
    row = scorecard.rows.first()
    assert mallory.post(reverse("scorecard-row-sign-off", args=[row.pk]), {"comment": "ok"}).status_code == 403
    view = view_of(scorecard)
    assert not view.ready and view.proven == 0

    # An administrator alone: owns every row, asks for NOT APPLICABLE and cannot approve it.
    root = role_client("admin", "root")
    from django.contrib.auth import get_user_model

    root_user = get_user_model().objects.get(username="root")
    for row in scorecard.rows.all():
        data = {"owner": "Platform", "rollback_condition": "stop on errors", "owner_user": root_user.pk}
        assert root.post(reverse("scorecard-row-edit", args=[row.pk]), data).status_code == 302
    for check in Check.objects.filter(row__scorecard=scorecard):
        root.post(reverse("scorecard-check-applicability", args=[check.pk]), {"withdraw": "1"})
        root.post(reverse("scorecard-check-applicability", args=[check.pk]), {"reason": "skip"})
        assert root.post(reverse("scorecard-check-applicability-approve", args=[check.pk])).status_code == 403
    for row in scorecard.rows.all():
        assert root.post(reverse("scorecard-row-sign-off", args=[row.pk]), {"comment": "fine"}).status_code == 302
    view = view_of(scorecard)
    assert not view.ready and view.proven == 0, "sign-offs without evidence prove nothing"
    for check in Check.objects.filter(row__scorecard=scorecard):
        root.post(reverse("scorecard-check-applicability", args=[check.pk]), {"withdraw": "1"})

    # The system's evidence: every row PASS, but the sign-offs were given at UNKNOWN and lapsed.
    system_evidence(scorecard)
    view = view_of(scorecard)
    assert view.proven == 5 and not view.ready
    assert {r.awaiting_signoff for r in view.rows} == {"lapsed: signed off at UNKNOWN, the row is now PASS"}
    for row in scorecard.rows.all():
        assert root.post(reverse("scorecard-row-sign-off", args=[row.pk]), {"comment": "measured"}).status_code == 302
    assert view_of(scorecard).ready
    page = root.get(reverse("scorecard-detail", args=[cluster.pk])).content.decode()
    assert "READY" in page and "NOT READY" not in page


def test_a_sign_off_lapses_when_the_status_changes_or_it_grows_old(role_client, settings):
    scorecard = register()
    owner = role_client("operator", "olga")
    from django.contrib.auth import get_user_model

    scorecard.rows.update(owner_user=get_user_model().objects.get(username="olga"))
    system_evidence(scorecard)
    row = scorecard.rows.get(key="metadata")
    assert owner.post(reverse("scorecard-row-sign-off", args=[row.pk]), {"comment": ""}).status_code == 302
    assert not SignOff.objects.exists(), "a sign-off needs a comment"
    owner.post(reverse("scorecard-row-sign-off", args=[row.pk]), {"comment": "re-election measured"})
    signed = next(r for r in view_of(scorecard).rows if r.row.pk == row.pk)
    assert signed.signed and signed.signoff.username == "olga" and signed.signoff.row_status == "PASS"
    page = owner.get(reverse("scorecard-detail", args=[scorecard.cluster_id])).content.decode()
    assert "olga signed off at PASS" in page and "re-election measured" in page
    # Older than the validity period.
    SignOff.objects.update(signed_at=timezone.now() - timedelta(days=settings.SIGNOFF_VALID_DAYS + 1))
    assert next(r for r in view_of(scorecard).rows if r.row.pk == row.pk).awaiting_signoff == (
        "lapsed: older than 90 days"
    )
    # The status changes.
    SignOff.objects.update(signed_at=timezone.now())
    health = Check.objects.get(row=row, kind="cluster_health")
    evidence_append(check=health, status="FAIL", summary="leaderless", measurements={}, collected_by="celery@w")
    lapsed = next(r for r in view_of(scorecard).rows if r.row.pk == row.pk)
    assert lapsed.awaiting_signoff == "lapsed: signed off at PASS, the row is now FAIL"
    assert AuditEvent.objects.filter(action="row.sign_off", actor="olga").count() == 1


def test_changes_are_audited_with_before_and_after_and_secrets_redacted(user_client):
    url = reverse("scorecard-cluster-new")
    form = {
        "name": "sasl",
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_username": "svc",
        "sasl_password": "hunter2-very-secret",
        "worker_queue": "default",
        "actuator": "none",
        "actuator_commands": "{}",
    }
    assert user_client.post(url, form).status_code == 302
    cluster = Cluster.objects.get(name="sasl")
    edit = reverse("scorecard-cluster-edit", args=[cluster.pk])
    assert user_client.post(edit, {**form, "worker_queue": "zone-a"}).status_code == 302
    event = AuditEvent.objects.get(action="cluster.update")
    assert (event.actor, event.before, event.after) == ("sre", {"worker_queue": "default"}, {"worker_queue": "zone-a"})
    assert AuditEvent.objects.get(action="cluster.register").after["sasl_password_token"] == "[set]"
    everything = str(list(AuditEvent.objects.values()))
    assert "hunter2" not in everything and cluster.sasl_password_token not in everything
    page = user_client.get(reverse("scorecard-audit"), {"cluster": "sasl", "action": "cluster."}).content.decode()
    assert "worker_queue" in page and "zone-a" in page and "hunter2" not in page
    other = user_client.get(reverse("scorecard-audit"), {"actor": "nobody"}).content.decode()
    assert "zone-a" not in other
    bad = user_client.get(reverse("scorecard-audit"), {"since": "yesterday-ish"})
    assert bad.status_code == 200 and "Enter a valid date/time" in bad.content.decode()


def test_login_is_throttled_sessions_idle_out_and_pages_carry_security_headers(client, settings):
    user = user_with_role("viewer", "viewer")
    user.set_password("correct horse battery")
    user.save()
    login = reverse("login")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post(login, {"username": "viewer", "password": "wrong"}).status_code == 200
    assert client.post(login, {"username": "viewer", "password": "wrong"}).status_code == 429
    locked = client.post(login, {"username": "viewer", "password": "correct horse battery"})
    assert locked.status_code == 429 and "Too many failed logins" in locked.content.decode()
    assert not client.session.get("_auth_user_id")
    page = client.get(login)
    assert page["X-Frame-Options"] == "DENY" and page["X-Content-Type-Options"] == "nosniff"
    assert page["Referrer-Policy"] == "same-origin"
    assert "script-src 'self'" in page["Content-Security-Policy"]
    assert settings.SESSION_COOKIE_AGE == 30 * 60 and settings.SESSION_SAVE_EVERY_REQUEST


def test_a_sign_off_lapses_when_the_rows_owner_changes(role_client):
    from django.contrib.auth import get_user_model

    scorecard = register()
    owner = role_client("operator", "olga")
    users = get_user_model().objects
    scorecard.rows.update(owner_user=users.get(username="olga"))
    row = scorecard.rows.get(key="cost")
    owner.post(reverse("scorecard-row-sign-off", args=[row.pk]), {"comment": "budget reviewed"})
    assert next(r for r in view_of(scorecard).rows if r.row.pk == row.pk).signed
    scorecard.rows.filter(pk=row.pk).update(owner_user=user_with_role("nina", "operator"))
    lapsed = next(r for r in view_of(scorecard).rows if r.row.pk == row.pk)
    assert lapsed.awaiting_signoff == "lapsed: the row's owner changed since"


def test_a_pending_not_applicable_request_is_not_overwritten_by_another(role_client):
    scorecard = register()
    check = Check.objects.get(row__scorecard=scorecard, kind="consumer_groups")
    olga, abe = role_client("operator", "olga"), role_client("drill approver", "abe")
    url = reverse("scorecard-check-applicability", args=[check.pk])
    olga.post(url, {"reason": "no groups yet"})
    second = abe.post(url, {"reason": "taken over by abe"}, follow=True)
    assert "olga already asked; withdraw that request first" in second.content.decode()
    check.refresh_from_db()
    assert check.not_applicable_by == "olga" and check.not_applicable_reason == "no groups yet"


def test_schedule_edits_and_a_retyped_password_are_audited(user_client):
    scorecard = register()
    check = Check.objects.get(row__scorecard=scorecard, kind="cluster_health")
    url = reverse("scorecard-check-schedule", args=[check.pk])
    assert user_client.post(url, {"interval_seconds": "60", "max_age_seconds": "600"}).status_code == 302
    event = AuditEvent.objects.get(action="check.update")
    assert event.before == {"interval_seconds": 900, "max_age_seconds": 3600}
    assert event.after == {"interval_seconds": 60, "max_age_seconds": 600}
    form = {
        "name": "sasl", "bootstrap_servers": "127.0.0.1:9092", "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN", "sasl_username": "svc", "sasl_password": "first-secret", "worker_queue": "default",
        "actuator": "none", "actuator_commands": "{}",
    }  # fmt: skip
    user_client.post(reverse("scorecard-cluster-new"), form)
    cluster = Cluster.objects.get(name="sasl")
    edit = reverse("scorecard-cluster-edit", args=[cluster.pk])
    assert user_client.post(edit, {**form, "sasl_password": "second-secret"}).status_code == 302
    event = AuditEvent.objects.get(action="cluster.update")
    assert event.comment == "SASL password entered" and "second-secret" not in str(event.before | event.after)
