"""Secrets at rest: encrypted in the database, rotated by a command, bound to their endpoint."""

import socket
import threading

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from scorecard import secrets
from scorecard.models import Cluster
from tests.factories import check_of, register
from tests.scorecard.test_views import SECRET, valid_form

pytestmark = pytest.mark.django_db

SASL = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_username": "svc"}


def stored_column(cluster: Cluster) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT sasl_password_token FROM scorecard_cluster WHERE id = %s", [cluster.pk])
        return cursor.fetchone()[0]


def test_the_password_is_encrypted_in_the_database(user_client):
    user_client.post(reverse("scorecard-cluster-new"), valid_form(**SASL, sasl_password=SECRET))
    cluster = Cluster.objects.get()
    column = stored_column(cluster)
    assert column and SECRET not in column
    assert Cluster.objects.get().sasl_password == SECRET


def test_key_rotation_keeps_every_cluster_working(settings):
    a = Cluster.objects.create(name="a", bootstrap_servers="a:9092", **SASL, sasl_password="pw-a")
    b = Cluster.objects.create(name="b", bootstrap_servers="b:9092", **SASL, sasl_password="pw-b")
    old_tokens = {stored_column(a), stored_column(b)}
    new_key = Fernet.generate_key().decode()
    settings.SCORECARD_SECRET_KEYS = [new_key, *settings.SCORECARD_SECRET_KEYS]
    call_command("rotate_secrets")
    settings.SCORECARD_SECRET_KEYS = [new_key]  # the old key is gone
    assert {stored_column(a), stored_column(b)}.isdisjoint(old_tokens)
    assert [c.sasl_password for c in Cluster.objects.order_by("name")] == ["pw-a", "pw-b"]


def test_a_secret_no_configured_key_reads_is_a_clear_error(settings):
    from drills.probes import probe_run

    scorecard = register(name="a", bootstrap="127.0.0.1:1", **SASL, sasl_password="pw-a")
    settings.SCORECARD_SECRET_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(secrets.SecretUnreadable, match="cannot be decrypted with SCORECARD_SECRET_KEYS"):
        _ = Cluster.objects.get(pk=scorecard.cluster.pk).sasl_password
    # A probe of that cluster is ERROR evidence naming the cause, not a crash.
    result = probe_run(check_of(scorecard))
    assert result.status == "ERROR" and "cannot be decrypted" in result.summary


class Listener:
    """A TCP listener that keeps every byte sent to it."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.received = bytearray()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn):
        with conn:
            conn.settimeout(5)
            try:
                while chunk := conn.recv(4096):
                    self.received += chunk
            except OSError:
                pass


def test_changing_the_address_clears_the_secret_and_the_new_address_never_gets_it(user_client):
    from drills.probes import PROBES, probe_context
    from scorecard import catalog

    user_client.post(reverse("scorecard-cluster-new"), valid_form(**SASL, sasl_password=SECRET))
    cluster = Cluster.objects.get()
    listener = Listener()
    edit = reverse("scorecard-cluster-edit", args=[cluster.pk])

    # Only the address changes, the password field is left empty: refused, nothing saved.
    response = user_client.post(edit, valid_form(**SASL, bootstrap_servers=f"127.0.0.1:{listener.port}"))
    assert response.status_code == 200
    assert "enter the password again" in response.content.decode()
    assert Cluster.objects.get().bootstrap_servers == cluster.bootstrap_servers

    # Moved without SASL: saved, and the stored password is gone with it.
    user_client.post(edit, valid_form(bootstrap_servers=f"127.0.0.1:{listener.port}"))
    moved = Cluster.objects.get()
    assert moved.bootstrap_servers == f"127.0.0.1:{listener.port}" and stored_column(moved) == ""

    # Moved back to SASL with no password typed: refused.
    response = user_client.post(edit, valid_form(**SASL, bootstrap_servers=f"127.0.0.1:{listener.port}"))
    assert "SASL needs a password" in response.content.decode() or "enter the password" in response.content.decode()

    PROBES["cluster_health"](probe_context(moved), catalog.parse("cluster_health", {"timeout_seconds": 2}))
    assert listener.received, "the probe never reached the listener"
    assert SECRET.encode() not in bytes(listener.received)


def test_the_same_endpoint_keeps_the_stored_password(user_client):
    user_client.post(reverse("scorecard-cluster-new"), valid_form(**SASL, sasl_password=SECRET))
    cluster = Cluster.objects.get()
    edit = reverse("scorecard-cluster-edit", args=[cluster.pk])
    response = user_client.post(edit, valid_form(**SASL, expected_brokers="5"))
    assert response.status_code == 302
    assert Cluster.objects.get().sasl_password == SECRET and Cluster.objects.get().expected_brokers == 5


def test_the_binding_holds_below_the_form_too():
    """Any code that moves a cluster (a command, the demo, later the API) forgets its password."""
    cluster = Cluster.objects.create(name="a", bootstrap_servers="a:9092", **SASL, sasl_password="pw-a")
    cluster = Cluster.objects.get(pk=cluster.pk)
    cluster.bootstrap_servers = "elsewhere:9092"
    cluster.save()
    assert stored_column(cluster) == ""
    cluster.sasl_password = "pw-b"  # typed for the new address: kept
    cluster.bootstrap_servers = "third:9092"
    cluster.save()
    assert Cluster.objects.get(pk=cluster.pk).sasl_password == "pw-b"
