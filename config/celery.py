"""The Celery application; configuration comes from Django settings (CELERY_*)."""

import logging
import os
import sys

from celery import Celery
from celery.signals import beat_init, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("scorecard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@beat_init.connect
def refuse_misfitting_limits(**kwargs) -> None:
    """A worker or beat whose time limits do not fit together refuses to start (drills/checks.py).
    Celery logs and swallows exceptions from signal handlers, so this exits instead."""
    import django
    from django.core import checks

    django.setup()
    errors = [e for e in checks.run_checks(tags=["limits"]) if e.is_serious()]
    for error in errors:
        logging.getLogger(__name__).critical("%s %s", error.msg, error.hint)
    if errors:
        sys.exit(1)
