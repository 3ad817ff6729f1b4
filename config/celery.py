"""The Celery application; configuration comes from Django settings (CELERY_*)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("scorecard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def setup_periodic_tasks(sender, **kwargs):
    from django.conf import settings

    sender.add_periodic_task(
        settings.SCHEDULER_TICK_SECONDS, sender.signature("drills.tasks.enqueue_due_checks"), name="enqueue due checks"
    )
