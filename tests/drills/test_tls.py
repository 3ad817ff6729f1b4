"""Probes and a drill against a real TLS listener: stunnel in front of Tansu, Tansu advertising
the TLS port, certificates made by the test (tests/tools/tls.py)."""

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from drills import kafka
from drills import services as drill_services
from drills.models import DrillRun
from drills.probes import probe_run
from drills.services import check_run_request
from drills.tansu import TansuBroker, free_port
from scorecard.models import Actuator, CheckRun, Evidence, ProbeKind
from tests.conftest import wait_for
from tests.factories import check_of, probe, register
from tests.tools.tls import Authority, Stunnel, authority

CA_NAME = "Scorecard Test Root CA"


@dataclass
class TlsListeners:
    """One Tansu behind one stunnel with a service per certificate variant."""

    ca: Authority
    tansu: TansuBroker
    stunnel: Stunnel
    ports: dict[str, int]

    def address(self, variant: str) -> str:
        return f"127.0.0.1:{self.ports[variant]}"

    def connection(self, variant: str = "good", *, ca_pem: str | None = None) -> kafka.ConnectionSettings:
        return kafka.ConnectionSettings(
            self.address(variant), "SSL", ssl_ca_pem=self.ca.pem if ca_pem is None else ca_pem
        )

    def connections_accepted(self, variant: str) -> int:
        return self.stunnel.log_path.read_text().count(f"Service [{variant}] accepted connection")


def start_listeners(ca: Authority, variants: dict) -> TlsListeners:
    ports = {variant: free_port() for variant in variants}
    # Clients that bootstrap over TLS must keep talking TLS: the broker advertises the good TLS port.
    tansu = TansuBroker(advertised_port=ports["good"]).start()
    directory = Path(tempfile.mkdtemp(prefix="tls-"))
    services = {variant: (ports[variant], tansu.port, certificate) for variant, certificate in variants.items()}
    try:
        terminator = Stunnel(services, directory).start()
    except RuntimeError:
        tansu.kill()
        raise
    return TlsListeners(ca, tansu, terminator, ports)


def stop_listeners(listeners: TlsListeners) -> None:
    listeners.stunnel.stop()
    listeners.tansu.kill()
    shutil.rmtree(listeners.stunnel.directory, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_listeners():
    ca = authority(CA_NAME)
    listeners = start_listeners(
        ca,
        {
            "good": ca.issue(days=365),
            "expiring": ca.issue(days=5),
            "expired": ca.issue(days=-3),
            "stranger": authority("Other CA").issue(),
            "elsewhere": ca.issue(names=("kafka-7.example.com", "10.9.8.7")),
        },
    )
    yield listeners
    stop_listeners(listeners)


# --- probes in-process against each certificate ---------------------------------------------------


def test_bootstrap_endpoints_pass_over_tls_and_report_the_certificate(tls_listeners):
    result = probe("bootstrap_endpoints", tls_listeners.connection("good"))
    assert result.status == "PASS", result.summary
    (endpoint,) = result.measurements["endpoints"]
    assert 364 <= endpoint["cert_days_left"] <= 365
    assert endpoint["cert_subject"] == "CN=127.0.0.1"
    assert endpoint["cert_names"] == ["DNS:localhost", "IP:127.0.0.1"]
    assert endpoint["brokers_in_answer"] == 1 and endpoint["error"] is None
    assert tls_listeners.connections_accepted("good") >= 1  # it really went through the terminator


def test_a_certificate_expiring_within_cert_warn_days_warns_naming_the_days(tls_listeners):
    result = probe("bootstrap_endpoints", tls_listeners.connection("expiring"), cert_warn_days=30)
    assert result.status == "WARN", result.summary
    assert "TLS certificate expires in 5.0 days" in result.summary
    assert "warning at 30 days" in result.summary
    assert result.measurements["endpoints"][0]["cert_days_left"] == pytest.approx(5, abs=0.1)
    # Outside the warning window the same certificate passes.
    assert probe("bootstrap_endpoints", tls_listeners.connection("expiring"), cert_warn_days=3).status == "PASS"


def test_an_expired_certificate_fails_bootstrap_endpoints_naming_the_expiry_and_its_days(tls_listeners):
    result = probe("bootstrap_endpoints", tls_listeners.connection("expired"))
    assert result.status == "FAIL", result.summary
    assert f"{tls_listeners.address('expired')}: TLS certificate expired on " in result.summary
    assert "(3 days ago; subject CN=127.0.0.1)" in result.summary
    assert "renewed" in result.summary
    (endpoint,) = result.measurements["endpoints"]
    # The handshake a client makes is refused, yet the days were read from the certificate.
    assert endpoint["cert_rejected"] and endpoint["cert_days_left"] == pytest.approx(-3, abs=0.1)
    assert endpoint["metadata_ms"] is None


def test_a_certificate_from_another_ca_fails_naming_both_cas(tls_listeners):
    result = probe("bootstrap_endpoints", tls_listeners.connection("stranger"))
    assert result.status == "FAIL", result.summary
    assert (
        f"TLS certificate is not signed by the configured CA (CN={CA_NAME}): it was issued by CN=Other CA"
        in result.summary
    )
    # Without a CA on the cluster, the worker's own trust store decides, and the message says so.
    result = probe("bootstrap_endpoints", tls_listeners.connection("good", ca_pem=""))
    assert result.status == "FAIL", result.summary
    assert "not signed by any CA the worker trusts (no CA certificate is configured" in result.summary
    assert f"issued by CN={CA_NAME}" in result.summary


def test_a_certificate_for_another_host_fails_naming_the_host_and_the_names_it_holds(tls_listeners):
    result = probe("bootstrap_endpoints", tls_listeners.connection("elsewhere"))
    assert result.status == "FAIL", result.summary
    assert (
        "TLS certificate does not match the host name 127.0.0.1: it holds DNS:kafka-7.example.com, IP:10.9.8.7"
        in result.summary
    )


def test_one_refused_certificate_among_good_addresses_still_fails(tls_listeners):
    connection = kafka.ConnectionSettings(
        f"{tls_listeners.address('good')},{tls_listeners.address('expired')}", "SSL", ssl_ca_pem=tls_listeners.ca.pem
    )
    result = probe("bootstrap_endpoints", connection)
    assert result.status == "FAIL", result.summary
    assert result.measurements["alive"] == 1 and result.measurements["cert_rejected"] == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ("expired", "TLS certificate expired on "),
        ("stranger", f"TLS certificate is not signed by the configured CA (CN={CA_NAME})"),
        ("elsewhere", "TLS certificate does not match the host name 127.0.0.1: it holds DNS:kafka-7.example.com"),
    ],
)
def test_cluster_health_on_a_refused_certificate_is_an_error_saying_why(tls_listeners, variant, message):
    scorecard = register(
        name=f"tls-{variant}",
        bootstrap=tls_listeners.address(variant),
        security_protocol="SSL",
        ssl_ca_pem=tls_listeners.ca.pem,
    )
    for kind in (ProbeKind.CLUSTER_HEALTH, ProbeKind.ACK_WRITE):
        result = probe_run(check_of(scorecard, kind))
        assert result.status == "ERROR", result.summary
        assert result.summary.startswith(f"no bootstrap address can be used: {tls_listeners.address(variant)}: ")
        assert message in result.summary


def test_a_plain_listener_given_as_ssl_says_the_tls_handshake_failed(tls_listeners):
    result = probe("bootstrap_endpoints", kafka.ConnectionSettings(tls_listeners.tansu.bootstrap, "SSL"))
    assert result.status == "FAIL", result.summary
    assert "TLS handshake failed" in result.summary and "is it a TLS listener?" in result.summary


# --- through a worker ------------------------------------------------------------------------------


def finished_run(run: CheckRun) -> CheckRun | None:
    run.refresh_from_db()
    return run if run.state in (CheckRun.State.DONE, CheckRun.State.FAILED) else None


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("requesters")
def test_health_acknowledged_write_and_bootstrap_endpoints_pass_over_tls_in_a_worker(
    tls_listeners, start_private_worker
):
    worker = start_private_worker("tls")
    scorecard = register(
        name="tls",
        bootstrap=tls_listeners.address("good"),
        worker_queue=worker.queue,
        security_protocol="SSL",
        ssl_ca_pem=tls_listeners.ca.pem,
        expected_brokers=1,
    )
    before = tls_listeners.connections_accepted("good")
    kinds = (ProbeKind.CLUSTER_HEALTH, ProbeKind.ACK_WRITE, ProbeKind.BOOTSTRAP_ENDPOINTS)
    runs = [check_run_request(check=check_of(scorecard, kind), requested_by="test") for kind in kinds]
    for run in runs:
        run = wait_for(lambda run=run: finished_run(run), timeout=60, message=f"the {run.pk} run")
        evidence = Evidence.objects.get(run=run)
        assert evidence.status == "PASS", (run.check_obj.kind, evidence.summary)
    write = Evidence.objects.get(run=runs[1]).measurements
    assert write["missing"] == 0 and write["acked"] > 0, write
    endpoint = Evidence.objects.get(run=runs[2]).measurements["endpoints"][0]
    assert endpoint["cert_subject"] == "CN=127.0.0.1" and endpoint["cert_days_left"] > 364
    assert tls_listeners.connections_accepted("good") > before


# --- a drill over TLS ------------------------------------------------------------------------------


@pytest.fixture
def private_tls_tansu():
    ca = authority(CA_NAME)
    listeners = start_listeners(ca, {"good": ca.issue()})
    yield listeners
    stop_listeners(listeners)
    # The command actuator restarted Tansu as a detached process advertising the TLS port.
    subprocess.run(["pkill", "-9", "-f", f"tcp://127.0.0.1:{listeners.ports['good']}$"], check=False)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("requesters")
@pytest.mark.xdist_group("drill-runs")
def test_a_broker_loss_drill_runs_over_tls_and_finds_tansu_loses_acknowledged_records(
    private_tls_tansu, start_private_worker
):
    worker = start_private_worker("tls-drill")
    listeners = private_tls_tansu
    connection = listeners.connection("good")
    kafka.topic_create(connection, name="__recovery_probe", partitions=1, replication_factor=1, timeout=5)
    # {port} is the advertised TLS port: it names the Tansu process (its advertised URL) and the
    # restart advertises it again, so clients go on talking TLS through the terminator.
    commands = {
        "broker_down": ["pkill", "-9", "-f", "tcp://127.0.0.1:{port}$"],
        "broker_up": [
            sys.executable, "-m", "drills.tansu", "start",
            "--port", str(listeners.tansu.port), "--advertised-port", "{port}",
        ],
        "timeout_seconds": 30,
    }  # fmt: skip
    cluster = register(
        name="tls-tansu",
        bootstrap=listeners.address("good"),
        worker_queue=worker.queue,
        security_protocol="SSL",
        ssl_ca_pem=listeners.ca.pem,
        drills_allowed=True,
        actuator=Actuator.COMMAND,
        actuator_commands=commands,
    ).cluster
    run = drill_services.drill_run_start(
        cluster=cluster,
        scenario="broker_loss",
        params={"baseline_seconds": 1, "settle_seconds": 4, "fault_seconds": 1},
        requested_by="sre",
    )

    def finished() -> DrillRun | None:
        run.refresh_from_db()
        return None if run.active else run

    run = wait_for(finished, timeout=120, message="the drill over TLS")
    figures = run.figures
    actions = [e for e in run.events if e["kind"] == "action"]
    assert [a["exit_code"] for a in actions] == [0, 0], actions
    assert "tansu started" in actions[1]["output"]
    # Records were acknowledged over TLS before the kill, and Tansu (memory only) lost them.
    assert figures["records_acked"] > 0 and figures["rpo_acked_lost"] > 0, (run.error, figures)
    assert run.outcome == "failed"
    assert figures["metadata"]["loss_observed"], figures["metadata"]
    assert listeners.connections_accepted("good") >= 3
