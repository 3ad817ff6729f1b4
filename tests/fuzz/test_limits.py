"""Request body limits, and command placeholders at execution: the answers a hostile client
gets are a 413 or 400 with a sentence, and a value that reads as an option never reaches a
program's argv."""

import sys

import pytest
from django.conf import settings
from django.test import Client

from drills.actuators import Action, ActuatorError, CommandActuator
from scorecard.models import Cluster
from tests.conftest import user_with_role

pytestmark = pytest.mark.django_db

RECORD_ARGV = "import sys, pathlib; pathlib.Path(sys.argv[1]).write_text(repr(sys.argv[2:]))"


def test_a_form_post_beyond_the_memory_limit_is_a_413_saying_so(role_client):
    body = b"name=x&ssl_ca_pem=" + b"a" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = role_client("admin").post("/clusters/new/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413
    assert response.content.decode() == "The request body is larger than the 2,621,440 bytes accepted."
    assert not Cluster.objects.exists()


def test_an_upload_beyond_the_body_limit_is_a_413_before_it_is_read(role_client):
    boundary = "fuzz"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.yaml"\r\n\r\n'.encode()
        + b"#" * settings.REQUEST_BODY_MAX_BYTES
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = role_client("admin").post(
        "/config/import/", body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 413
    assert "larger than the 4,194,304 bytes accepted" in response.content.decode()


def csrf_checked_admin(page: str) -> tuple[Client, str]:
    """A logged-in administrator whose posts pass CSRF's check as a browser's do (the test
    client skips that check, which reads the body before any view)."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user_with_role("admin", "admin"))
    client.get(page)
    return client, client.cookies["csrftoken"].value


def test_multipart_fields_beyond_the_memory_limit_are_a_413_not_a_bare_400():
    client, token = csrf_checked_admin("/config/import/")
    boundary = "fuzz"
    text = "#" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n{token}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n{text}\r\n--{boundary}--\r\n'
    )
    response = client.post("/config/import/", body.encode(), content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 413
    assert response.content.decode() == "The form's fields are larger than the 2,621,440 bytes accepted."


def test_too_many_fields_is_a_400_saying_so():
    client, token = csrf_checked_admin("/clusters/new/")
    fields = [f"csrfmiddlewaretoken={token}"] + [f"f{i}=1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS)]
    body = "&".join(fields).encode()
    response = client.post("/clusters/new/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert "more fields or files than any page here sends" in response.content.decode()


def test_a_yaml_text_of_a_megabyte_still_fits(role_client):
    """The limits leave room for the largest legitimate post: a 1 MB YAML import."""
    text = "version: 1\n# " + "é" * 499_000 + "\n"
    response = role_client("admin").post("/config/import/", {"text": text})
    assert response.status_code == 200
    assert "larger than" not in response.content.decode()


@pytest.mark.parametrize("host", ["-oProxyCommand=touch /tmp/owned", "--help", "-", "a b", "x;id", "\x00"])
def test_a_broker_host_that_reads_as_an_option_never_reaches_the_command(tmp_path, host):
    """The cluster's metadata (the customer's cluster: the seam) advertises a hostile host; the
    real command would record its argv. It is never run."""
    marker = tmp_path / "argv"
    actuator = CommandActuator(
        {"broker_down": [sys.executable, "-c", RECORD_ARGV, str(marker), "{host}"], "broker_up": ["true"]},
        {1: {"host": host, "port": 9092, "rack": "a"}},
    )
    with pytest.raises(ActuatorError, match="refusing to put host="):
        actuator.perform(Action("broker_down", 1))
    assert not marker.exists()


def test_a_safe_broker_host_reaches_the_command_as_typed(tmp_path):
    marker = tmp_path / "argv"
    actuator = CommandActuator(
        {
            "broker_down": [sys.executable, "-c", RECORD_ARGV, str(marker), "{host}", "--port={port}", "{rack}"],
            "broker_up": ["true"],
        },
        {1: {"host": "kafka-1.internal", "port": 9092, "rack": "eu-west-1a"}},
    )
    result = actuator.perform(Action("broker_down", 1))
    assert result["exit_code"] == 0
    assert marker.read_text() == repr(["kafka-1.internal", "--port=9092", "eu-west-1a"])


@pytest.mark.parametrize("rack", ["-x", "--rack=evil"])
def test_a_rack_or_port_starting_with_a_dash_is_refused_too(tmp_path, rack):
    actuator = CommandActuator(
        {"broker_down": ["true", "{rack}"], "broker_up": ["true"]}, {1: {"host": "k", "port": "-1", "rack": rack}}
    )
    with pytest.raises(ActuatorError, match="starts with '-'"):
        actuator.argv(Action("broker_down", 1))


def test_templates_whose_program_starts_with_a_dash_are_refused_at_validation(role_client):
    response = role_client("admin").post(
        "/clusters/new/",
        {
            "name": "c",
            "bootstrap_servers": "k:9092",
            "security_protocol": "PLAINTEXT",
            "worker_queue": "default",
            "actuator": "command",
            "actuator_commands": '{"broker_down": ["-x"], "broker_up": ["true"]}',
        },
    )
    assert response.status_code == 200
    assert "the program (the first item) cannot start with" in response.content.decode()
