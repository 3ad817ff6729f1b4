from django.apps import AppConfig


class DrillsConfig(AppConfig):
    name = "drills"
    verbose_name = "Probes and drills against live clusters"

    def ready(self) -> None:
        from drills import checks  # noqa: F401 - registers the limit checks
