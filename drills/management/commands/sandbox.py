from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from drills.sandbox.control import DEFAULT_PROBE_TOPIC, SandboxError
from drills.sandbox.server import serve


class Command(BaseCommand):
    requires_system_checks = []
    help = "Run a local sandbox Kafka cluster (racks a, b, c) with its control channel until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--brokers", type=int, default=3)
        parser.add_argument("--state-file", type=Path, default=settings.SANDBOX_STATE_FILE)
        parser.add_argument("--probe-topic", default=DEFAULT_PROBE_TOPIC)

    def handle(self, *args, brokers, state_file, probe_topic, **options):
        def announce(state):
            self.stdout.write(f"sandbox cluster: bootstrap {state['bootstrap']}, control {state['control']}")
            self.stdout.flush()

        try:
            serve(state_file=state_file, brokers=brokers, probe_topic=probe_topic, ready=announce)
        except SandboxError as exc:
            raise CommandError(str(exc)) from None
