"""Prometheus metrics at /metrics: what the pages show, for the clusters a token may see.

Every scrape builds a fresh registry from the database (no process state: the web server runs
several workers, each would hold its own) in a fixed number of queries, whatever the number of
clusters or the length of their evidence. docs/metrics.md lists the metrics and their bound.
"""

import ipaddress
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Count, DurationField, ExpressionWrapper, F, OuterRef, Q, Subquery
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_safe
from kombu.exceptions import ChannelError, OperationalError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from api.tokens import token_user
from config.celery import app
from drills.models import DrillRun
from scorecard import roles, selectors
from scorecard.catalog import ProbeKind
from scorecard.models import Check, CheckRun, Cluster, Scorecard, Status
from scorecard.selectors import CheckView, ScorecardView
from scorecard.status import SEVERITY

# A scrape waits at most this long on each broker call: an unreachable broker costs one timeout.
BROKER_TIMEOUT_SECONDS = 1
RECENT_RUNS = 10
# (figure key on the drill run, its target's key, metric name stem, unit, what it is)
DRILL_FIGURES = (
    ("write_rto_s", "write_rto_s", "drill_write_rto", "seconds", "Write RTO"),
    ("read_rto_s", "read_rto_s", "drill_read_rto", "seconds", "Read RTO"),
    ("rpo_acked_lost", "rpo_records", "drill_rpo", "records", "Acknowledged records lost (RPO)"),
)


@never_cache
@require_safe
@gzip_page  # Prometheus asks for gzip (a twentieth of the bytes); the answer echoes nothing a client sent
def metrics(request):
    if not _address_allowed(request.META.get("REMOTE_ADDR", "")):
        return _refusal(403, "/metrics is not served to this address (METRICS_ALLOWED_NETWORKS).")
    user = token_user(request.headers.get("Authorization"))
    if user is None:
        response = _refusal(401, "/metrics needs an API token: Authorization: Bearer rrs_... (docs/metrics.md).")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    try:
        roles.require(user, "read", "read the metrics")
    except PermissionDenied as refused:
        return _refusal(403, str(refused))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Scrape(user))
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def _refusal(status: int, reason: str) -> HttpResponse:
    return HttpResponse(reason + "\n", status=status, content_type="text/plain; charset=utf-8")


def _address_allowed(address: str) -> bool:
    networks = settings.METRICS_ALLOWED_NETWORKS
    if not networks:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    ip = getattr(ip, "ipv4_mapped", None) or ip  # ::ffff:10.0.0.1 from a dual-stack listener
    return any(ip in network for network in networks)


class Scrape:
    """The collector of one request: the metrics of the clusters `user` may see."""

    def __init__(self, user):
        self.user = user

    def collect(self) -> Iterator[GaugeMetricFamily]:
        started = time.perf_counter()
        yield from families(user=self.user)
        duration = _gauge("scrape_duration_seconds", "How long this scrape took to read and build the metrics.")
        duration.add_metric([], time.perf_counter() - started)
        yield duration


def families(*, user, now: datetime | None = None) -> Iterator[GaugeMetricFamily]:
    now = now or timezone.now()
    scorecards = list(
        Scorecard.objects.select_related("cluster").filter(roles.visible(user, "cluster__")).order_by("cluster__name")
    )
    # The overview's reading: chain states from the signed heads, never a walk of a chain.
    views = selectors.scorecard_views(scorecards=scorecards, now=now, detail=False)
    probes = {
        cv.check.pk: (view.scorecard.cluster, cv)
        for view in views
        for row in view.rows
        for cv in row.checks
        if cv.status != Status.NOT_APPLICABLE and cv.check.kind != ProbeKind.DRILL_RESULTS
    }
    yield from _rows(views, now)
    yield from _drills({s.cluster_id: s.cluster.name for s in scorecards})
    yield from _probes(probes)
    yield from _queues([s.cluster for s in scorecards])


def _gauge(name: str, documentation: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"kafka_recovery_{name}", documentation, labels=labels)


def _rows(views: list[ScorecardView], now: datetime) -> Iterator[GaugeMetricFamily]:
    status = _gauge(
        "row_status",
        "1 for the row's current status, 0 for the other statuses (FAIL > ERROR > STALE > UNKNOWN > WARN > PASS).",
        ("cluster", "row", "status"),
    )
    age = _gauge(
        "row_evidence_age_seconds",
        "Age of the oldest of the latest evidence the row's status rests on; absent when nothing was observed.",
        ("cluster", "row"),
    )
    signed = _gauge("row_signed_off", "1 when the owner's sign-off holds (not lapsed), else 0.", ("cluster", "row"))
    ready = _gauge("ready", "1 when the scorecard is READY as the overview shows it, else 0.", ("cluster",))
    proven = _gauge("rows_proven", "Rows proven: PASS on an intact evidence chain (of 5).", ("cluster",))
    chain = _gauge("chain_intact", "1 when the evidence chain agrees with its signed head, else 0.", ("cluster",))
    for view in views:
        cluster = view.scorecard.cluster.name
        for row in view.rows:
            for value in SEVERITY:
                status.add_metric([cluster, row.row.key, value], float(row.status == value))
            if oldest := row.oldest_evidence:
                age.add_metric([cluster, row.row.key], (now - oldest).total_seconds())
            signed.add_metric([cluster, row.row.key], float(row.signed))
        ready.add_metric([cluster], float(view.ready))
        proven.add_metric([cluster], view.proven)
        chain.add_metric([cluster], float(view.chain.ok))
    yield from (status, age, signed, ready, proven, chain)


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _drills(names: dict[int, str]) -> Iterator[GaugeMetricFamily]:
    labels = ("cluster", "scenario")
    last = "the last measured (passed or failed) drill of the scenario"
    figures = [
        (key, _gauge(f"{stem}_{unit}", f"{what} of {last}; absent when not observed.", labels))
        for key, _, stem, unit, what in DRILL_FIGURES
    ]
    targets = [
        (key, _gauge(f"{stem}_target_{unit}", f"{what} target {last} was judged against.", labels))
        for _, key, stem, unit, what in DRILL_FIGURES
    ]
    passed = _gauge("drill_passed", "1 when the last measured drill of the scenario passed, 0 when it failed.", labels)
    finished = _gauge("drill_finished_timestamp_seconds", f"When {last} finished (Unix time).", labels)
    for cluster_id, runs in selectors.last_drills(list(names)).items():
        for run in runs:
            where = [names[cluster_id], run.scenario]
            for key, family in figures:
                if _number(value := run.figures.get(key)):
                    family.add_metric(where, value)
            for key, family in targets:
                if _number(value := (run.targets.get(key) or {}).get("value")):
                    family.add_metric(where, value)
            passed.add_metric(where, float(run.outcome == DrillRun.Outcome.PASSED))
            finished.add_metric(where, run.finished_at.timestamp())
    running = _gauge("drills_running", "Drills queued, running or recovering on the cluster (at most 1).", ("cluster",))
    # The partial unique index on active drills answers this.
    active = DrillRun.objects.filter(cluster_id__in=names, state__in=DrillRun.ACTIVE).order_by()
    busy = set(active.values_list("cluster_id", flat=True))
    for cluster_id, name in names.items():
        running.add_metric([name], float(cluster_id in busy))
    yield from (*(f for _, f in figures), *(f for _, f in targets), passed, finished, running)


def _probe_runs(check_ids: list[int]) -> dict[int, tuple[timedelta | None, int]]:
    """(how long the last completed run took, failures among the last RECENT_RUNS runs) per
    check, in one query: a few index probes per check on (check, -created_at), however long its
    history and however often it runs (a time window would read more runs the more often)."""
    newest = CheckRun.objects.order_by("-created_at")
    took = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    last_done = newest.filter(check_obj=OuterRef("pk"), state=CheckRun.State.DONE).annotate(took=took).values("took")
    recent = newest.filter(check_obj=OuterRef(OuterRef("pk"))).values("pk")[:RECENT_RUNS]
    failed = (
        CheckRun.objects.filter(pk__in=recent)
        .filter(Q(state=CheckRun.State.FAILED) | Q(evidence__status=Status.ERROR))
        .order_by()
        .values("check_obj")
        .annotate(count=Count("pk"))
        .values("count")
    )
    checks = Check.objects.filter(pk__in=check_ids).annotate(took=Subquery(last_done[:1]), failed=Subquery(failed))
    return {pk: (took, failed or 0) for pk, took, failed in checks.values_list("pk", "took", "failed")}


def _probes(probes: dict[int, tuple[Cluster, CheckView]]) -> Iterator[GaugeMetricFamily]:
    labels = ("cluster", "kind")
    duration = _gauge("probe_duration_seconds", "How long the probe's last completed run took.", labels)
    error = _gauge(
        "probe_error",
        "1 when the probe's latest evidence is ERROR (it could not run), else 0; absent before any run.",
        labels,
    )
    failures = _gauge(
        "probe_recent_failures",
        f"Of the probe's last {RECENT_RUNS} runs, those that recorded ERROR or never reached a worker.",
        labels,
    )
    runs = _probe_runs(list(probes))
    for check_id, (cluster, cv) in probes.items():
        where = [cluster.name, cv.check.kind]
        took, failed = runs[check_id]
        if took is not None:
            duration.add_metric(where, took.total_seconds())
        if cv.latest is not None:
            error.add_metric(where, float(cv.latest.status == Status.ERROR))
        failures.add_metric(where, failed)
    yield from (duration, error, failures)


def _queues(clusters: list[Cluster]) -> Iterator[GaugeMetricFamily]:
    queues = {c.worker_queue for c in clusters} | {settings.CELERY_TASK_DEFAULT_QUEUE, settings.AUDIT_EXPORT_QUEUE}
    depths = queue_depths(sorted(queues))
    up = _gauge("broker_up", "1 when the task broker answered this scrape, else 0 (queue depths are then absent).")
    up.add_metric([], float(depths is not None))
    depth = _gauge("queue_depth", "Messages waiting on the worker queue in the task broker.", ("queue",))
    for queue, count in (depths or {}).items():
        depth.add_metric([queue], count)
    yield from (up, depth)


def queue_depths(queues: list[str]) -> dict[str, int] | None:
    """Messages waiting on each queue, or None when the broker does not answer in time."""
    options = {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        "max_retries": 0,  # kombu retries a connection for ever by default
        "socket_connect_timeout": BROKER_TIMEOUT_SECONDS,
        "socket_timeout": BROKER_TIMEOUT_SECONDS,
    }
    connection = app.connection_for_read(
        url=settings.CELERY_BROKER_URL, connect_timeout=BROKER_TIMEOUT_SECONDS, transport_options=options
    )
    try:
        with connection:
            channel = connection.default_channel
            return {queue: _depth(channel, queue) for queue in queues}
    except (OperationalError, *connection.connection_errors):
        return None


def _depth(channel, queue: str) -> int:
    try:
        return channel.queue_declare(queue=queue, passive=True).message_count
    except ChannelError:  # Redis drops an emptied list, so a queue without messages is "not found"
        return 0
