"""Backups (docs/operations.md): PostgreSQL holds all state; a pg_dump restore verifies whole."""

import os
import shutil
import subprocess
import sys

import pytest
from django.db import connection

from scorecard import evidence
from tests.conftest import ROOT, database_url_for_worker
from tests.factories import check_of, register

pytestmark = [pytest.mark.django_db(transaction=True)]


def manage(database_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "SCORECARD_MODE": "test"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def restored_copy(tmp_path):
    """pg_dump of the test database restored into a database of its own; yields its URL."""
    if not shutil.which("pg_dump"):
        pytest.fail("pg_dump is missing: apt-get install postgresql-client")
    db = connection.settings_dict
    source = database_url_for_worker()
    name = f"{db['NAME']}_restored"
    target = source.rsplit("/", 1)[0] + f"/{name}"
    dump = tmp_path / "backup.dump"
    subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", source], check=True, timeout=120)
    admin = source.rsplit("/", 1)[0] + "/postgres"
    subprocess.run(["psql", admin, "-qc", f'DROP DATABASE IF EXISTS "{name}"'], check=True, timeout=60)
    subprocess.run(["psql", admin, "-qc", f'CREATE DATABASE "{name}"'], check=True, timeout=60)
    try:
        subprocess.run(["pg_restore", "--no-owner", f"--dbname={target}", str(dump)], check=True, timeout=120)
        yield target
    finally:
        subprocess.run(["psql", admin, "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], timeout=60)


def append(check, summary):
    evidence.evidence_append(check=check, status="PASS", summary=summary, measurements={}, collected_by="t")


@pytest.fixture
def two_chains():
    prod, dr = check_of(register("prod")), check_of(register("dr"))
    for number in range(3):
        append(prod, f"prod {number}")
        append(dr, f"dr {number}")
    return prod, dr


def test_a_restored_backup_verifies_whole_with_the_same_heads(two_chains, restored_copy):
    result = manage(restored_copy, "verify_chains")
    assert result.returncode == 0, result.stderr
    heads = {check.row.scorecard.cluster.name: check.row.scorecard for check in two_chains}
    for name, scorecard in heads.items():
        scorecard.refresh_from_db()
        assert f"{name}: whole, 3 links, head {scorecard.head_hash}" in result.stdout


def test_verify_chains_names_a_chain_broken_in_the_copy(two_chains, restored_copy):
    dr = two_chains[1].row.scorecard
    subprocess.run(
        [
            "psql",
            restored_copy,
            "-qc",
            f"UPDATE scorecard_evidence SET summary = 'x' WHERE scorecard_id = {int(dr.pk)} AND seq = 2",  # noqa: S608
        ],
        check=True,
        timeout=60,
    )
    result = manage(restored_copy, "verify_chains")
    assert result.returncode == 1
    assert "dr: BROKEN: evidence #2 was changed" in result.stdout
    assert "prod: whole, 3 links" in result.stdout
