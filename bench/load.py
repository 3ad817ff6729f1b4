"""Load benchmark: 200 probe runs at once across 20 sandbox clusters on two Celery workers,
with the web pages in use meanwhile (issue 13, point 4).

Starts everything itself: a database of its own (created, migrated, dropped afterwards), 20
sandbox clusters (`manage.py sandbox` processes), two `celery worker` processes on one queue
of its own, and gunicorn on config.wsgi on a free loopback port (as scripts/serve runs it).
It registers a scorecard per cluster, queues 200 runs in one transaction through the services
the "Run checks now" and "Run now" pages and API call (`scorecard_run_checks`, 8 checks per
cluster, plus `check_run_request` for cluster health and the acknowledged write again: 10 per
cluster), and while they run fetches the dashboard, scorecard, check and drill pages (a
logged-in session) and the API lists (a bearer token) from a few client threads.

Prints the completion time of the 200, runs lost (no end state or no evidence), runs
duplicated (more than one evidence item per run, or evidence of the bench's checks without a
run), each scorecard's chain verified, the web's median and p95 page time idle and under load,
the peak RSS of each worker (its main process and pool processes, summed, from /proc), and the
probe time per kind. Exits 1 if any run is lost or duplicated.

Why 4 pool processes per worker (`--concurrency`): a probe mostly waits for the cluster
(metadata round trips, acknowledgements, consumer polls), so two cores keep more than two probes
busy; beyond two per core the CPU-bound parts (the acknowledged write's produce and verify, the
20 mock clusters answering, gunicorn) only queue behind each other while every extra prefork
process costs its own ~100 MB.

    SCORECARD_MODE=test .venv/bin/python bench/load.py [--clusters 20] [--runs 200] [--concurrency 4]

Environment: DATABASE_URL names the bench database (default
postgres://postgres@127.0.0.1:5432/bench_load, dropped and created again: never point it at a
real one), CELERY_BROKER_URL the Redis database (default redis://127.0.0.1:6379/8).
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SCORECARD_MODE", "test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_load")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/8")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
BIN = Path(sys.executable).parent

DONE_LINE = re.compile(r"Task drills\.tasks\.run_check\[([0-9a-f-]+)\] succeeded")
CLIENT_THREADS = 4
IDLE_ROUNDS = 3
RUN_TIMEOUT_SECONDS = 900


def database_recreate(url: str) -> None:
    """Drop and create the bench database, connected to the server's `postgres` database."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.startswith("bench"):
        sys.exit(f"refusing to drop {name!r}: the bench database's name must start with 'bench'")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def database_drop(url: str) -> None:
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(parts.path.lstrip("/"))))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Processes:
    """Every child the bench starts, stopped in reverse order whatever happens."""

    def __init__(self):
        self.children: list[subprocess.Popen] = []
        self.directories: list[str] = []

    def add(self, process: subprocess.Popen) -> subprocess.Popen:
        self.children.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.children):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(self.children):
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # each child leads a session of its own
                process.wait(5)
        for directory in self.directories:
            shutil.rmtree(directory, ignore_errors=True)


def wait_until(predicate, *, timeout: float, what: str, process: subprocess.Popen | None = None, log: Path = None):
    deadline = time.monotonic() + timeout
    while not predicate():
        if (process is not None and process.poll() is not None) or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise SystemExit(f"{what} did not come up:\n{tail}")
        time.sleep(0.2)


def worker_start(procs: Processes, logs: Path, *, name: str, queue: str, concurrency: int) -> tuple:
    log = logs / f"{name}.log"
    argv = [
        str(BIN / "celery"), "-A", "config", "worker", "-Q", queue, "-c", str(concurrency), "--loglevel", "INFO",
        "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{name}@%h",
    ]  # fmt: skip
    with open(log, "wb") as out:
        process = procs.add(
            subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        )
    wait_until(lambda: "ready." in log.read_text(errors="replace"), timeout=90, what=name, process=process, log=log)
    return process, log


def gunicorn_start(procs: Processes, logs: Path, port: int) -> subprocess.Popen:
    log = logs / "gunicorn.log"
    argv = [
        str(BIN / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2",
        "--threads", "4", "--timeout", "60", "--graceful-timeout", "20",
    ]  # fmt: skip
    with open(log, "wb") as out:
        process = procs.add(
            subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        )

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    wait_until(answers, timeout=60, what="gunicorn", process=process, log=log)
    return process


def tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and its descendants (a prefork worker and its pool)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return total


class RssSampler(threading.Thread):
    def __init__(self, pids: dict[str, int]):
        super().__init__(daemon=True)
        self.pids, self.peak = pids, dict.fromkeys(pids, 0)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.25):
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], tree_rss_kb(pid))


class WebClient(threading.Thread):
    """Fetches the pages in a loop, keeping every response time and every failure."""

    def __init__(self, port: int, urls: list[tuple[str, dict]], offset: int):
        super().__init__(daemon=True)
        self.port, self.urls, self.offset = port, urls, offset
        self.times: list[float] = []
        self.errors: list[str] = []
        self.rounds = 0
        self.stopped = threading.Event()

    def fetch(self, url: str, headers: dict) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        started = time.perf_counter()
        try:
            conn.request("GET", url, headers={"Host": "127.0.0.1", **headers})
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - started
            if response.status == 200:
                self.times.append(elapsed)
            else:
                self.errors.append(f"{url}: {response.status}")
        except OSError as exc:
            self.errors.append(f"{url}: {exc}")
        finally:
            conn.close()

    def run_rounds(self, rounds: int | None) -> None:
        n = len(self.urls)
        while not self.stopped.is_set() and (rounds is None or self.rounds < rounds):
            for i in range(n):
                if self.stopped.is_set():
                    return
                self.fetch(*self.urls[(i + self.offset) % n])
            self.rounds += 1

    def run(self) -> None:
        self.run_rounds(None)


def web_load(port: int, urls, *, rounds: int | None, until=None) -> tuple[list[float], list[str]]:
    """CLIENT_THREADS clients; `rounds` rounds each (idle), or until `until()` is true."""
    clients = [WebClient(port, urls, offset=i * len(urls) // CLIENT_THREADS) for i in range(CLIENT_THREADS)]
    if rounds is not None:
        threads = [threading.Thread(target=c.run_rounds, args=(rounds,)) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        for client in clients:
            client.start()
        until()
        for client in clients:
            client.stopped.set()
        for client in clients:
            client.join(70)
    return [t for c in clients for t in c.times], [e for c in clients for e in c.errors]


def percentiles(times: list[float]) -> str:
    if not times:
        return "no successful requests"
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(ordered) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms ({len(ordered)} requests)"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4, help="pool processes per worker")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--keep-logs", action="store_true", help="keep the workers' and gunicorn's logs")
    args = parser.parse_args()
    database_url = os.environ["DATABASE_URL"]

    database_recreate(database_url)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    procs = Processes()
    logs = Path(tempfile.mkdtemp(prefix="bench-load-"))
    if args.keep_logs:
        print(f"logs in {logs}")
    else:
        procs.directories.append(str(logs))
    try:
        return run(args, procs, logs)
    finally:
        procs.stop()
        from django.db import connections

        connections.close_all()
        if not args.keep_database:
            database_drop(database_url)


def run(args, procs: Processes, logs: Path) -> int:
    from django.db import transaction
    from django.db.models import Count
    from django.test import Client

    from api.tokens import token_create
    from drills.models import DrillRun
    from drills.sandbox.server import spawn
    from drills.services import check_run_request, scorecard_run_checks
    from scorecard.evidence import chain_verify
    from scorecard.models import Check, CheckRun, Cluster, Evidence, ProbeKind
    from scorecard.roles import role_assign
    from scorecard.services import cluster_register

    queue = f"bench-load-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    scorecards = []
    for i in range(args.clusters):
        directory = tempfile.mkdtemp(prefix="sb-")  # short: Unix socket paths
        procs.directories.append(directory)
        process, state = spawn(
            Path(directory) / "state.json", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        procs.add(process)
        cluster = Cluster(
            name=f"load-{i:02d}", bootstrap_servers=state["bootstrap"], expected_brokers=3, worker_queue=queue
        )
        scorecards.append(cluster_register(cluster=cluster))
    print(f"{args.clusters} sandbox clusters up and registered in {time.perf_counter() - started:.1f} s")

    workers = {
        f"worker-{n}": worker_start(procs, logs, name=f"bench{n}", queue=queue, concurrency=args.concurrency)
        for n in (1, 2)
    }
    port = free_port()
    gunicorn_start(procs, logs, port)

    user = role_assign(username="bench", role="operator", create=True)[0]
    browser = Client()
    browser.force_login(user)
    session = {"Cookie": f"sessionid={browser.cookies['sessionid'].value}"}
    bearer = {"Authorization": f"Bearer {token_create(actor=user, name='bench load')[1]}"}
    first = scorecards[0]
    checks = list(Check.objects.filter(row__scorecard=first).order_by("id"))
    drill = DrillRun.objects.create(cluster=first.cluster, scenario="broker_loss", state="done", requested_by="bench")
    urls = [("/", session)]
    urls += [(f"/clusters/{card.cluster_id}/", session) for card in scorecards[:4]]
    urls += [(f"/checks/{check.pk}/", session) for check in checks[:4]]
    urls += [
        (f"/clusters/{first.cluster_id}/drills/", session),
        (f"/drills/{drill.pk}/", session),
        (f"/rows/{checks[0].row_id}/evidence/", session),
        ("/audit/", session),
        ("/api/v1/clusters?limit=50", bearer),
        (f"/api/v1/clusters/{first.cluster_id}/evidence?limit=50", bearer),
        (f"/api/v1/clusters/{scorecards[1].cluster_id}/scorecard", bearer),
        (f"/api/v1/clusters/{first.cluster_id}/drills", bearer),
    ]
    web_load(port, urls, rounds=1, until=None)  # warm: each gunicorn process loads the URL conf once
    idle_times, idle_errors = web_load(port, urls, rounds=IDLE_ROUNDS)

    sampler = RssSampler({name: process.pid for name, (process, _) in workers.items()})
    sampler.start()
    per_cluster = args.runs // args.clusters
    queued_at = time.perf_counter()
    with transaction.atomic():  # sent together when it commits
        runs = []
        for card in scorecards:
            # A copy: the service sends the very list it returns once the transaction commits.
            mine = list(scorecard_run_checks(scorecard=card, requested_by="bench"))
            extra = [ProbeKind.CLUSTER_HEALTH, ProbeKind.ACK_WRITE, ProbeKind.DURABILITY_CONFIG]
            for kind in extra[: max(0, per_cluster - len(mine))]:
                check = Check.objects.get(row__scorecard=card, kind=kind)
                mine.append(check_run_request(check=check, requested_by="bench"))
            runs += mine
    run_ids = [run.pk for run in runs]
    print(f"queued {len(run_ids)} runs on {queue} in {time.perf_counter() - queued_at:.2f} s")

    finished_at = {}

    def all_finished() -> bool:
        deadline = queued_at + RUN_TIMEOUT_SECONDS
        while time.perf_counter() < deadline:
            unfinished = [CheckRun.State.QUEUED, CheckRun.State.RUNNING]
            if not CheckRun.objects.filter(pk__in=run_ids, state__in=unfinished).exists():
                finished_at["t"] = time.perf_counter()
                return True
            time.sleep(0.5)
        return False

    load_times, load_errors = web_load(port, urls, rounds=None, until=all_finished)
    sampler.stopped.set()
    sampler.join()
    completion = finished_at.get("t", time.perf_counter()) - queued_at

    done = set(CheckRun.objects.filter(pk__in=run_ids, state=CheckRun.State.DONE).values_list("pk", flat=True))
    with_evidence = set(Evidence.objects.filter(run_id__in=run_ids).values_list("run_id", flat=True))
    lost = sorted(set(run_ids) - (done & with_evidence))
    twice = Evidence.objects.filter(run_id__in=run_ids).values("run_id").annotate(n=Count("id")).filter(n__gt=1)
    bench_checks = Check.objects.filter(row__scorecard__in=scorecards)
    orphans = Evidence.objects.filter(check_obj__in=bench_checks, run__isnull=True).count()
    duplicated = sum(row["n"] - 1 for row in twice) + orphans
    broken = [card.cluster.name for card in scorecards if not chain_verify(scorecard=card).ok]
    statuses = dict(
        Evidence.objects.filter(run_id__in=run_ids).values_list("status").annotate(n=Count("id")).order_by()
    )

    finished = "all finished" if "t" in finished_at else f"NOT all finished within {RUN_TIMEOUT_SECONDS} s"
    print(f"completion of {len(run_ids)} runs: {completion:.1f} s ({finished})")
    print(f"runs lost (no end state or no evidence): {len(lost)}" + (f" {lost[:20]}" if lost else ""))
    print(f"runs duplicated (evidence items beyond one per run): {duplicated}")
    print(f"evidence statuses: {json.dumps(statuses, sort_keys=True)}; chains broken: {broken or 'none'}")
    print(f"web idle ({CLIENT_THREADS} clients): {percentiles(idle_times)}, {len(idle_errors)} errors")
    print(f"web under load ({CLIENT_THREADS} clients): {percentiles(load_times)}, {len(load_errors)} errors")
    for error in (idle_errors + load_errors)[:10]:
        print(f"  web error: {error}")
    for name, peak in sampler.peak.items():
        processes = 1 + args.concurrency
        print(f"{name} peak RSS: {peak / 1024:.0f} MB ({processes} processes, -c {args.concurrency})")
    # Both workers record the same host name on the runs: count in their logs instead.
    # Both workers record the same host name on the runs: count in their logs instead. A
    # delivery beyond the first of a run finds it claimed and says so ("already claimed").
    for name, (_, log) in workers.items():
        lines = log.read_text(errors="replace").splitlines()
        tasks = {m.group(1) for line in lines if (m := DONE_LINE.search(line))}
        again = sum("already claimed" in line for line in lines)
        print(f"{name}: {len(tasks)} probe tasks done, {again} deliveries of a run already claimed")
    print("probe seconds per kind (median, max):")
    for kind in ProbeKind.values:
        spans = [
            (r.finished_at - r.started_at).total_seconds()
            for r in CheckRun.objects.filter(pk__in=run_ids, check_obj__kind=kind, finished_at__isnull=False)
        ]
        if spans:
            print(f"  {kind:22} {statistics.median(spans):6.2f} {max(spans):6.2f}  ({len(spans)} runs)")
    return 1 if lost or duplicated else 0


if __name__ == "__main__":
    sys.exit(main())
