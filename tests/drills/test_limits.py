"""Time limits fit together (STYLE rule 7): visibility timeout, drill limits, probe parameters."""

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from drills.checks import limits_fit
from drills.models import DrillRun, drill_hard_limit_max_seconds
from scorecard import catalog

ROOT = Path(__file__).resolve().parents[2]


def test_the_visibility_timeout_exceeds_the_hard_limit_of_the_longest_drill():
    longest = DrillRun(params={"max_duration_seconds": 3600})
    assert longest.hard_time_limit_seconds == drill_hard_limit_max_seconds() == 3750
    assert drill_hard_limit_max_seconds() < settings.CELERY_VISIBILITY_TIMEOUT
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] == settings.CELERY_VISIBILITY_TIMEOUT
    assert limits_fit() == []


def test_a_visibility_timeout_shorter_than_the_longest_drill_is_an_error(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/15"
    settings.CELERY_VISIBILITY_TIMEOUT = 1320  # what it was: four times the probe task's hard limit
    assert [e.id for e in limits_fit()] == ["drills.E001"]


def test_a_soft_time_limit_too_short_for_the_default_probes_is_an_error(settings):
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 120
    errors = limits_fit()
    assert errors and {e.id for e in errors} == {"drills.E002"}
    assert any("ack_write" in e.msg for e in errors)


@pytest.mark.parametrize("kind", list(catalog.PROBE_WAITS))
def test_no_probe_parameter_can_exceed_the_task_time_limit(kind):
    """Every accepted combination of timeout, sample time and groups fits the soft limit;
    the others are refused naming timeout_seconds."""
    spec = {p.name: p for p in catalog.SPECS[kind]}
    budget = settings.CELERY_TASK_SOFT_TIME_LIMIT - catalog.PROBE_TIME_MARGIN_SECONDS
    timeout = spec.get("timeout_seconds")
    timeouts = [timeout.minimum, timeout.default, timeout.maximum] if timeout else [None]
    samples = [1, 300] if "sample_seconds" in spec else [None]
    groups = [[], [f"g{i}" for i in range(50)]] if "groups" in spec else [None]
    accepted = 0
    for timeout, sample, group_list in itertools.product(timeouts, samples, groups):
        raw = {
            name: value
            for name, value in (("timeout_seconds", timeout), ("sample_seconds", sample), ("groups", group_list))
            if value is not None
        }
        try:
            parsed = catalog.parse(kind, raw)
        except catalog.ParamError as exc:
            assert set(exc.errors) == {"timeout_seconds"} and "beyond the" in exc.errors["timeout_seconds"]
            continue
        accepted += 1
        assert catalog.probe_worst_case_seconds(kind, parsed) <= budget
    assert accepted, "at least the defaults must be accepted"


def test_a_worker_with_misfitting_limits_refuses_to_start():
    env = {
        **os.environ,
        "SCORECARD_MODE": "test",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
        "CELERY_VISIBILITY_TIMEOUT": "600",
    }
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "never-used", "--pool", "solo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "CELERY_VISIBILITY_TIMEOUT=600" in done.stdout + done.stderr
