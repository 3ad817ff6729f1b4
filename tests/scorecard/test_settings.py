"""Start-up configuration: bad values stop the process with a message naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start(**env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("SCORECARD_MODE", "DATABASE_URL", "CELERY_BROKER_URL")}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


PRODUCTION = {
    "SECRET_KEY": "x" * 40,
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
    "SCORECARD_SECRET_KEYS": "bmV3LWtleS1mb3ItdGVzdHMtMzItYnl0ZXMtbG9uZyE=",
    "SCORECARD_EVIDENCE_KEY": "e" * 40,
}


def test_production_settings_start():
    assert start(**PRODUCTION).returncode == 0


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"SECRET_KEY_FALLBACKS": "y" * 40 + ",short"}, "SECRET_KEY_FALLBACKS"),
        ({"DATABASE_URL": ""}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql://db/x"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgres://host:notaport/db"}, "DATABASE_URL"),
        ({"CELERY_BROKER_URL": ""}, "CELERY_BROKER_URL"),
        ({"CELERY_BROKER_URL": "amqp://guest@localhost//"}, "CELERY_BROKER_URL"),
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"SCORECARD_SECRET_KEYS": ""}, "SCORECARD_SECRET_KEYS"),
        ({"SCORECARD_SECRET_KEYS": "not-a-fernet-key"}, "SCORECARD_SECRET_KEYS"),
        ({"SCORECARD_EVIDENCE_KEY": ""}, "SCORECARD_EVIDENCE_KEY"),
        ({"SCORECARD_EVIDENCE_KEY": "short"}, "SCORECARD_EVIDENCE_KEY"),
        ({"SCORECARD_EVIDENCE_KEY": "x" * 40}, "SCORECARD_EVIDENCE_KEY"),  # the SECRET_KEY
        ({"SCORECARD_MODE": "staging"}, "SCORECARD_MODE"),
        ({"CELERY_TASK_SOFT_TIME_LIMIT": "soon"}, "CELERY_TASK_SOFT_TIME_LIMIT"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(env, named):
    result = start(**{**PRODUCTION, **env})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert named in result.stderr.strip().splitlines()[-1]


def test_demo_mode_runs_on_embedded_defaults_with_debug_off(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.DEBUG)",
        ],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY")}
        | {"SCORECARD_MODE": "demo", "DJANGO_SETTINGS_MODULE": "config.settings", "SCORECARD_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "filesystem://localhost/", "False"]
