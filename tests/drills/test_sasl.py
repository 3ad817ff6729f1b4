"""SASL at the client seam: the settings each protocol and mechanism gives librdkafka, and the
failure paths against a wire-level SASL listener (tests/tools/sasl_broker.py): a wrong password
and a mechanism the broker does not enable, each with a clear message and never the password."""

import json
import logging

import pytest

from drills import kafka
from drills.probes import probe_run
from drills.services import check_run_request
from scorecard.models import CheckRun, Evidence, ProbeKind
from tests.conftest import wait_for
from tests.factories import check_of, probe, register
from tests.tools.sasl_broker import SaslBroker
from tests.tools.tls import authority

USER = "scorecard"
PASSWORD = "Pa55-word-f0r-the-test"
WRONG = "Wr0ng-pa55-for-the-test"
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
REFUSED = "authentication failed: the broker refused the SASL username or password"


@pytest.fixture
def sasl_broker():
    with SaslBroker(user=USER, password=PASSWORD, mechanisms=MECHANISMS) as broker:
        yield broker


def sasl(bootstrap: str, mechanism: str = "PLAIN", password: str = PASSWORD) -> kafka.ConnectionSettings:
    return kafka.ConnectionSettings(bootstrap, "SASL_PLAINTEXT", mechanism, USER, password)


# --- the settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_sasl_settings_give_librdkafka_the_protocol_mechanism_and_credentials(protocol, mechanism):
    ca = authority().pem
    settings = kafka.ConnectionSettings("127.0.0.1:9093", protocol, mechanism, USER, PASSWORD, ssl_ca_pem=ca)
    config = settings.client_config(5)
    assert config["security.protocol"] == protocol
    assert (config["sasl.mechanism"], config["sasl.username"], config["sasl.password"]) == (mechanism, USER, PASSWORD)
    assert ("ssl.ca.pem" in config) == (protocol == "SASL_SSL")
    assert PASSWORD not in repr(settings)
    kafka.admin_client(settings, timeout=5)  # librdkafka accepts every key and value (it raises on a bad one)


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL"])
def test_protocols_without_sasl_carry_no_sasl_settings(protocol):
    config = kafka.ConnectionSettings("127.0.0.1:9093", protocol).client_config(5)
    assert not {key for key in config if key.startswith("sasl.")}


# --- against a SASL listener -----------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_the_right_password_authenticates_with_each_mechanism_and_anonymous_clients_are_refused(sasl_broker, mechanism):
    result = probe("bootstrap_endpoints", sasl(sasl_broker.bootstrap, mechanism), timeout_seconds=3)
    assert result.status == "PASS", result.summary
    (endpoint,) = result.measurements["endpoints"]
    assert endpoint["brokers_in_answer"] == 1 and endpoint["unauthenticated_refused"] is True
    assert (mechanism, True) in sasl_broker.attempts
    assert kafka.quick_failure(sasl(sasl_broker.bootstrap, mechanism)) is None


def no_secret_anywhere(password: str, caplog, *texts: object) -> None:
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for text in (logged, *texts):
        assert password not in (text if isinstance(text, str) else json.dumps(text, default=str))


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_a_wrong_password_is_an_error_saying_the_broker_refused_it_and_never_shows_it(sasl_broker, caplog, mechanism):
    caplog.set_level(logging.DEBUG)
    settings = sasl(sasl_broker.bootstrap, mechanism, WRONG)
    reason = kafka.quick_failure(settings)
    assert reason is not None and reason.startswith(REFUSED), reason
    assert "the broker said: Authentication failed" in reason
    result = probe("bootstrap_endpoints", settings, timeout_seconds=2)
    assert result.status == "FAIL", result.summary
    assert f"{sasl_broker.bootstrap}: Metadata: {REFUSED}" in result.summary
    assert (mechanism, False) in sasl_broker.attempts and (mechanism, True) not in sasl_broker.attempts
    # librdkafka's own log of the refusal went through our logger: it was there to leak, and did not.
    assert any(
        r.name == "drills.kafka.librdkafka" and "SASL authentication error" in r.getMessage() for r in caplog.records
    )
    no_secret_anywhere(WRONG, caplog, reason, result.summary, result.measurements)


def test_a_mechanism_the_broker_does_not_enable_names_the_ones_it_offers(caplog):
    caplog.set_level(logging.DEBUG)
    with SaslBroker(user=USER, password=PASSWORD, mechanisms=("PLAIN",)) as broker:
        settings = sasl(broker.bootstrap, "SCRAM-SHA-512")
        reason = kafka.quick_failure(settings)
        result = probe("bootstrap_endpoints", settings, timeout_seconds=2)
    assert reason == "the broker does not enable SASL mechanism SCRAM-SHA-512; it offers PLAIN"
    assert result.status == "FAIL"
    assert "Metadata: the broker does not enable SASL mechanism SCRAM-SHA-512; it offers PLAIN" in result.summary
    assert broker.attempts == []  # it never got as far as sending a credential
    no_secret_anywhere(PASSWORD, caplog, reason, result.summary, result.measurements)


# --- through a worker ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_cluster_health_with_a_wrong_password_is_an_error_naming_the_refusal(sasl_broker):
    scorecard = register(
        name="sasl-wrong",
        bootstrap=sasl_broker.bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username=USER,
        sasl_password=WRONG,
    )
    result = probe_run(check_of(scorecard))
    assert result.status == "ERROR"
    assert result.summary.startswith(REFUSED), result.summary


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("requesters")
def test_a_worker_probing_a_sasl_cluster_keeps_the_password_out_of_evidence_and_its_log(
    sasl_broker, start_private_worker
):
    worker = start_private_worker("sasl")
    clusters = {
        password: register(
            name=f"sasl-{index}",
            bootstrap=sasl_broker.bootstrap,
            worker_queue=worker.queue,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="PLAIN",
            sasl_username=USER,
            sasl_password=password,
        )
        for index, password in enumerate((PASSWORD, WRONG))
    }
    runs = {
        password: check_run_request(check=check_of(scorecard, ProbeKind.BOOTSTRAP_ENDPOINTS), requested_by="test")
        for password, scorecard in clusters.items()
    }

    def finished(run: CheckRun) -> CheckRun | None:
        run.refresh_from_db()
        return run if run.state in (CheckRun.State.DONE, CheckRun.State.FAILED) else None

    for run in runs.values():
        wait_for(lambda run=run: finished(run), timeout=60, message=f"run {run.pk}")
    good, bad = (Evidence.objects.get(run=runs[p]) for p in (PASSWORD, WRONG))
    assert good.status == "PASS", good.summary
    assert bad.status == "FAIL" and REFUSED in bad.summary, bad.summary
    for password, run in runs.items():
        evidence = Evidence.objects.get(run=run)
        stored = json.dumps(
            [evidence.summary, evidence.measurements, list(CheckRun.objects.filter(pk=run.pk).values())], default=str
        )
        assert password not in stored
        assert password not in worker.log()
