"""Start-up checks that the time limits fit together (STYLE rule 7). Run by `manage.py check`
and by every worker and beat process before it takes work (config/celery.py)."""

from types import SimpleNamespace

from django.conf import settings
from django.core.checks import Error, register

from drills.models import drill_hard_limit_max_seconds
from scorecard import catalog


@register("limits")
def limits_fit(app_configs=None, **kwargs) -> list[Error]:
    errors = []
    if settings.CELERY_BROKER_URL.startswith(("redis", "rediss")):
        visibility = settings.CELERY_VISIBILITY_TIMEOUT
        longest = max(drill_hard_limit_max_seconds(), settings.CELERY_TASK_TIME_LIMIT)
        if visibility <= longest:
            errors.append(
                Error(
                    f"CELERY_VISIBILITY_TIMEOUT={visibility} s does not exceed the longest task ({longest} s): "
                    "Redis would hand a running drill to a second worker.",
                    hint=f"Set CELERY_VISIBILITY_TIMEOUT above {longest}.",
                    id="drills.E001",
                )
            )
    budget = catalog.probe_time_budget_seconds()
    margin = catalog.PROBE_TIME_MARGIN_SECONDS
    for kind in catalog.PROBE_WAITS:
        defaults = SimpleNamespace(**catalog.defaults(kind))
        worst = catalog.probe_worst_case_seconds(kind, defaults)
        if worst > budget:
            errors.append(
                Error(
                    f"CELERY_TASK_SOFT_TIME_LIMIT={settings.CELERY_TASK_SOFT_TIME_LIMIT} s leaves {budget} s for a "
                    f"probe; {kind} with its default parameters may need {worst:.0f} s.",
                    hint=f"Raise CELERY_TASK_SOFT_TIME_LIMIT to at least {worst + margin:.0f}.",
                    id="drills.E002",
                )
            )
    return errors
