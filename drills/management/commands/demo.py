import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from drills.demo import DEMO_GROUP, demo_drill_schedules, demo_traffic
from drills.kafka import ConnectionSettings, KafkaCallError
from drills.sandbox.control import SandboxError, read_state
from scorecard.demo import DEMO_USERS, ROW_OWNER, demo_cluster, demo_not_applicable, demo_users
from scorecard.models import Check


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Run the whole product locally: sandbox cluster, Celery worker and beat, web server, demo data."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--wait", type=float, default=90.0, help="seconds to wait for the first evidence")

    def handle(self, *args, port, wait, **options):
        if settings.MODE != "demo":
            raise CommandError("manage.py demo runs only with SCORECARD_MODE=demo (use `make demo`).")
        if not 1024 <= port <= 65535:
            raise CommandError("--port must be between 1024 and 65535")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                raise CommandError(f"port {port} on 127.0.0.1 is busy; choose another with --port")
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        self.children: list[tuple[str, subprocess.Popen]] = []
        # Explicit handlers: a shell that backgrounds `make demo` starts it with SIGINT ignored.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _interrupt)
        try:
            self.run_demo(port, wait)
        except KeyboardInterrupt:
            self.stdout.write("\nstopping…")
        finally:
            self.stop_all()

    def start(self, name: str, *argv: str) -> subprocess.Popen:
        log = open(settings.VAR_DIR / f"{name}.log", "ab")  # noqa: SIM115 - kept open for the child's life
        # A session of its own: Ctrl-C reaches only this command, which stops children in order.
        process = subprocess.Popen(
            [sys.executable, *argv], stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=settings.BASE_DIR
        )
        self.children.append((name, process))
        return process

    def run_demo(self, port: int, wait: float) -> None:
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        sandbox_state = settings.SANDBOX_STATE_FILE
        tansu_state = settings.VAR_DIR / "tansu" / "state.json"
        for state_file in (sandbox_state, tansu_state):
            state_file.unlink(missing_ok=True)
        self.start("sandbox", manage, "sandbox", "--state-file", str(sandbox_state))
        self.start("tansu", manage, "tansu", "--state-file", str(tansu_state))
        try:
            sandbox = read_state(sandbox_state, wait=15)
            tansu = read_state(tansu_state, wait=15)
        except SandboxError as exc:
            raise CommandError(
                f"a local cluster did not start ({exc}); see var/sandbox.log and var/tansu.log"
            ) from None
        try:
            demo_traffic(ConnectionSettings(sandbox["bootstrap"]), control_socket=sandbox["control"])
            demo_traffic(ConnectionSettings(tansu["bootstrap"]))
        except (KafkaCallError, SandboxError) as exc:
            raise CommandError(f"could not seed demo traffic: {exc}") from None
        logins = demo_users()  # first: the demo rows name their owner's login
        scorecards = [
            demo_cluster(
                name="sandbox",
                bootstrap_servers=sandbox["bootstrap"],
                expected_brokers=3,
                groups=[DEMO_GROUP],
                control_socket=sandbox["control"],
            ),
            demo_cluster(name="tansu", bootstrap_servers=tansu["bootstrap"], expected_brokers=1, groups=[DEMO_GROUP]),
        ]
        demo_drill_schedules(scorecards[0])
        demo_not_applicable(scorecards[0])
        started = timezone.now()
        celery = ["-m", "celery", "-A", "config"]
        self.start("worker", *celery, "worker", "-Q", "default", "-c", "2", "--loglevel", "INFO")
        self.start("beat", *celery, "beat", "--loglevel", "INFO")
        self.start("web", manage, "runserver", f"127.0.0.1:{port}", "--insecure", "--noreload")
        self.stdout.write(
            f"sandbox cluster at {sandbox['bootstrap']}, tansu at {tansu['bootstrap']}; "
            "the scheduler is collecting the first evidence…"
        )
        checks = Check.objects.filter(row__scorecard__in=scorecards, not_applicable=False)
        deadline = time.monotonic() + wait
        while checks.exclude(evidence__collected_at__gte=started).exists():
            self.check_children()
            if time.monotonic() > deadline:
                self.stdout.write(self.style.WARNING("some first probes are still running; see var/worker.log"))
                break
            time.sleep(0.5)
        url = f"http://127.0.0.1:{port}/"
        lines = "\n".join(f"  {name:<9} {password}  ({DEMO_USERS[name]})" for name, password in logins.items())
        self.stdout.write(self.style.SUCCESS(f"\nScorecard dashboard: {url}\nLogins, one per role:\n{lines}\n"))
        self.stdout.write(
            f"The {ROW_OWNER} login owns every row and signs them off; drills are scheduled on the sandbox daily."
        )
        self.stdout.write("Logs in var/*.log. Press Ctrl-C to stop everything.")
        while True:
            self.check_children()
            time.sleep(1)

    def check_children(self) -> None:
        for name, process in self.children:
            if process.poll() is not None:
                raise CommandError(f"{name} exited with code {process.returncode}; see var/{name}.log")

    def stop_all(self) -> None:
        # SIGTERM to each main process only: Celery's warm shutdown stops its own pool.
        for _name, process in reversed(self.children):
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 15
        for name, process in reversed(self.children):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop in time; killing it")
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        self.stdout.write(f"stopped: {', '.join(name for name, _ in reversed(self.children))}")
