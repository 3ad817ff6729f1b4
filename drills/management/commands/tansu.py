import json
import signal
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from drills.tansu import TansuBroker, TansuError, free_port


class Command(BaseCommand):
    requires_system_checks = []
    help = "Run a Tansu broker (memory only) on a loopback port until stopped; publish its address."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=0, help="loopback port (default: a free one)")
        parser.add_argument("--state-file", type=Path, default=settings.VAR_DIR / "tansu" / "state.json")

    def handle(self, *args, port, state_file, **options):
        if port and not 1024 <= port <= 65535:
            raise CommandError("--port must be between 1024 and 65535")
        broker = TansuBroker(port=port or free_port())
        try:
            broker.start()
        except TansuError as exc:
            raise CommandError(str(exc)) from None
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps({"bootstrap": broker.bootstrap, "pid": broker.process.pid}))
        self.stdout.write(f"tansu broker: bootstrap {broker.bootstrap}")
        self.stdout.flush()
        try:
            while not stop.wait(0.5):
                if broker.process.poll() is not None:
                    raise CommandError(f"tansu exited with code {broker.process.returncode}")
        finally:
            broker.stop()
            state_file.unlink(missing_ok=True)
