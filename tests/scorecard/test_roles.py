"""Roles: every URL and action against every role, anonymous included; where a request is
refused, nothing in the record changes."""

from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from drills.models import DrillRun, DrillSchedule
from scorecard import services
from scorecard.models import Actuator, AuditEvent, Check, CheckRun, Cluster, Row, SignOff
from tests.conftest import user_with_role
from tests.factories import check_of, register

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "viewer", "operator", "drill approver", "admin")
ORDER = {role: i for i, role in enumerate(ROLES)}


@dataclass
class World:
    cluster: Cluster
    row: Row
    check: Check
    pending: Check
    run: DrillRun
    schedule: DrillSchedule


def world(*, running_drill: bool) -> World:
    users = {role: user_with_role(role.replace(" ", "-"), role) for role in ROLES[1:]}
    scorecard = register(name="prod", drills_allowed=True, actuator=Actuator.SANDBOX, sandbox_control="/tmp/none.sock")
    cluster = scorecard.cluster
    row = scorecard.rows.get(key="durability")
    Row.objects.filter(scorecard=scorecard).update(owner_user=users["operator"])
    row.refresh_from_db()
    pending = check_of(scorecard, "durability_config")
    services.not_applicable_request(check=pending, by="someone", reason="no DescribeConfigs")
    run = DrillRun.objects.create(
        cluster=cluster,
        scenario="broker_loss",
        requested_by="someone",
        state=DrillRun.State.RUNNING if running_drill else DrillRun.State.DONE,
        awaiting_step="stop broker 1" if running_drill else "",
    )
    schedule = DrillSchedule.objects.create(
        cluster=cluster,
        scenario="broker_loss",
        weekdays=[1],
        window_start="02:00",
        window_end="03:00",
        created_by="drill-approver",
    )
    return World(cluster, row, check_of(scorecard), pending, run, schedule)


def cluster_form(w: World, **overrides) -> dict:
    return {
        "name": "prod",
        "bootstrap_servers": "127.0.0.1:9093",
        "security_protocol": "PLAINTEXT",
        "worker_queue": "default",
        "actuator": "sandbox",
        "drills_allowed": "on",
        "actuator_commands": "{}",
        **overrides,
    }


# (name, minimum role or a rule, method, url, data). Data and URLs are functions of the world.
ACTIONS = [
    ("scorecards", "viewer", "get", lambda w: reverse("scorecard-index"), None),
    ("scorecard", "viewer", "get", lambda w: reverse("scorecard-detail", args=[w.cluster.pk]), None),
    ("row evidence", "viewer", "get", lambda w: reverse("scorecard-row-evidence", args=[w.row.pk]), None),
    ("check page", "viewer", "get", lambda w: reverse("scorecard-check", args=[w.check.pk]), None),
    ("drills page", "viewer", "get", lambda w: reverse("drills-list", args=[w.cluster.pk]), None),
    ("drill page", "viewer", "get", lambda w: reverse("drills-detail", args=[w.run.pk]), None),
    ("drill progress", "viewer", "get", lambda w: reverse("drills-progress", args=[w.run.pk]), None),
    ("audit trail", "viewer", "get", lambda w: reverse("scorecard-audit"), None),
    ("trends", "viewer", "get", lambda w: reverse("scorecard-trends", args=[w.cluster.pk]), None),
    ("audit PDFs", "viewer", "get", lambda w: reverse("scorecard-exports"), None),
    ("compare", "viewer", "get", lambda w: reverse("scorecard-compare") + f"?clusters={w.cluster.pk}", None),
    ("register form", "admin", "get", lambda w: reverse("scorecard-cluster-new"), None),
    (
        "register",
        "admin",
        "post",
        lambda w: reverse("scorecard-cluster-new"),
        lambda w: cluster_form(w, name="new", actuator="none", drills_allowed=""),
    ),
    ("cluster form", "admin", "get", lambda w: reverse("scorecard-cluster-edit", args=[w.cluster.pk]), None),
    (
        "edit cluster",
        "admin",
        "post",
        lambda w: reverse("scorecard-cluster-edit", args=[w.cluster.pk]),
        lambda w: cluster_form(w),
    ),
    ("row form", "owner", "get", lambda w: reverse("scorecard-row-edit", args=[w.row.pk]), None),
    (
        "edit row",
        "owner",
        "post",
        lambda w: reverse("scorecard-row-edit", args=[w.row.pk]),
        lambda w: {"owner": "storage team", "rollback_condition": "stop", "rollback_max_error_rate": "0.5"},
    ),
    (
        "sign off",
        "owner only",
        "post",
        lambda w: reverse("scorecard-row-sign-off", args=[w.row.pk]),
        lambda w: {"comment": "reviewed"},
    ),
    (
        "check parameters",
        "operator",
        "post",
        lambda w: reverse("scorecard-check-params", args=[w.check.pk]),
        lambda w: {"timeout_seconds": "5"},
    ),
    (
        "check schedule",
        "operator",
        "post",
        lambda w: reverse("scorecard-check-schedule", args=[w.check.pk]),
        lambda w: {"interval_seconds": "60", "max_age_seconds": "600"},
    ),
    (
        "ask for NOT APPLICABLE",
        "operator",
        "post",
        lambda w: reverse("scorecard-check-applicability", args=[w.check.pk]),
        lambda w: {"reason": "not here"},
    ),
    (
        "approve NOT APPLICABLE",
        "drill approver",
        "post",
        lambda w: reverse("scorecard-check-applicability-approve", args=[w.pending.pk]),
        lambda w: {},
    ),
    ("run checks", "operator", "post", lambda w: reverse("drills-run-checks", args=[w.cluster.pk]), lambda w: {}),
    ("run a check", "operator", "post", lambda w: reverse("drills-run-check", args=[w.check.pk]), lambda w: {}),
    (
        "start a drill",
        "operator",
        "post",
        lambda w: reverse("drills-list", args=[w.cluster.pk]),
        lambda w: {"scenario": "broker_loss", "confirm": "prod", "fault_seconds": "5"},
    ),
    (
        "abort another's drill",
        "drill approver",
        "post",
        lambda w: reverse("drills-abort", args=[w.run.pk]),
        lambda w: {},
    ),
    (
        "confirm another's step",
        "drill approver",
        "post",
        lambda w: reverse("drills-confirm", args=[w.run.pk]),
        lambda w: {},
    ),
    (
        "schedule a drill",
        "drill approver",
        "post",
        lambda w: reverse("drills-schedule-new", args=[w.cluster.pk]),
        lambda w: {
            "scenario": "broker_loss",
            "weekdays": ["1", "3"],
            "window_start": "02:00",
            "window_end": "04:00",
            "time_zone": "Europe/Paris",
            "fault_seconds": "5",
        },
    ),
    (
        "remove a schedule",
        "drill approver",
        "post",
        lambda w: reverse("drills-schedule-delete", args=[w.schedule.pk]),
        lambda w: {},
    ),
    ("roles (admin site)", "admin", "get", lambda w: reverse("admin:auth_user_changelist"), None),
    ("roles admin site: audit trail", "admin", "get", lambda w: reverse("admin:scorecard_auditevent_changelist"), None),
]


def allowed(rule: str, role: str) -> bool:
    if role == "anonymous":
        return False
    if rule == "owner only":  # the row's linked owner, whatever else they may do
        return role == "operator"
    if rule == "owner":  # the row's owner, or an administrator
        return role in ("operator", "admin")
    return ORDER[role] >= ORDER[rule]


def record_state() -> list:
    models = (Cluster, Row, Check, CheckRun, DrillRun, DrillSchedule, SignOff, AuditEvent)
    state = [list(model.objects.order_by("pk").values()) for model in models]
    return [*state, sorted(get_user_model().groups.through.objects.values_list("user_id", "group_id"))]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "rule", "method", "url", "data"), ACTIONS, ids=[a[0] for a in ACTIONS])
def test_permission_matrix(client, role, name, rule, method, url, data):
    w = world(running_drill=name in ("abort another's drill", "confirm another's step"))
    if role != "anonymous":
        client.force_login(get_user_model().objects.get(username=role.replace(" ", "-")))
    before = record_state()
    target = url(w)
    response = client.get(target) if method == "get" else client.post(target, data(w))
    if allowed(rule, role):
        assert response.status_code in (200, 302), (name, role, response.status_code)
        if response.status_code == 302:
            assert "/accounts/login/" not in response["Location"] and "/admin/login/" not in response["Location"]
        if method == "post":
            assert response.status_code == 302, (name, role, "a valid request should redirect")
            assert record_state() != before, (name, role, "an allowed action changed nothing")
    else:
        if role == "anonymous" or name.startswith("roles"):
            assert response.status_code == 302 and "login" in response["Location"], (name, role)
        else:
            assert response.status_code == 403, (name, role, response.status_code)
        assert record_state() == before, (name, role, "a refused request changed the record")


def test_the_admin_site_gives_roles_and_the_audit_trail_records_who(client):
    user_with_role("root", "admin")
    olga = get_user_model().objects.create_user("olga")
    client.force_login(get_user_model().objects.get(username="root"))
    operator = Group.objects.get(name="operator")
    url = reverse("admin:auth_user_change", args=[olga.pk])
    page = client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and not isinstance(v, list | tuple)}
    data.update({"username": "olga", "groups": [operator.pk], "is_active": "on", "is_superuser": "on"})
    data.pop("password", None)
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    assert list(olga.groups.values_list("name", flat=True)) == ["operator"]
    olga.refresh_from_db()
    assert not olga.is_superuser and not olga.is_staff, "the admin site gives roles, nothing beyond them"
    event = AuditEvent.objects.get(action="role.give", object_label="olga")
    assert (event.actor, event.object_label, event.after) == ("root", "olga", {"role": "operator"})


def test_the_roles_command_gives_and_takes_roles(capsys):
    call_command("roles", "give", "abe", "drill approver", "--create", "--by", "ops-lead")
    call_command("roles", "give", "abe", "admin")
    abe = get_user_model().objects.get(username="abe")
    assert abe.has_perm("scorecard.approve_drills") and abe.has_perm("scorecard.manage_roles") and abe.is_staff
    call_command("roles", "take", "abe", "admin")
    abe = get_user_model().objects.get(username="abe")
    assert not abe.has_perm("scorecard.manage_roles") and not abe.is_staff
    call_command("roles", "list")
    assert "abe: drill approver" in capsys.readouterr().out
    actions = list(AuditEvent.objects.order_by("pk").values_list("action", "actor"))
    assert actions[0] == ("role.give", "ops-lead")
    assert ("role.take", "system (manage.py roles)") in actions
    with pytest.raises(Exception, match="no user 'nobody'"):
        call_command("roles", "give", "nobody", "viewer")


def test_a_role_taken_away_stops_work_still_queued():
    from drills.runner import check_run_execute

    user_with_role("olga", "operator")
    check = check_of(register())
    run = services.check_run_create(check=check, requested_by="olga")
    call_command("roles", "take", "olga", "operator")
    assert check_run_execute(run_id=run.pk, worker="w") is None
    run.refresh_from_db()
    assert run.state == CheckRun.State.FAILED and "no longer holds a role" in run.error
    assert not check.evidence.exists()
