from scorecard import catalog, services
from scorecard.models import Check, Cluster, ProbeKind, RowKey, Scorecard

OWNED_ROWS = {key: {"owner": "team", "rollback_condition": "stop on errors"} for key in RowKey.values}


def register(name: str = "prod-eu", bootstrap: str = "127.0.0.1:9092", **fields) -> Scorecard:
    return services.cluster_register(cluster=Cluster(name=name, bootstrap_servers=bootstrap, **fields), rows=OWNED_ROWS)


def ca_pem(common_name: str = "Test Root CA", days: int = 365) -> str:
    """A self-signed CA certificate in PEM, valid for `days` from now (negative: expired)."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    not_after = now + timedelta(days=days)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(now, not_after) - timedelta(days=1)).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def ready_scorecard(name: str = "prod") -> Scorecard:
    """A READY scorecard: every runnable check PASS, every row signed off by its owner "olga"."""
    from django.contrib.auth import get_user_model

    from scorecard import selectors
    from scorecard.evidence import evidence_append
    from scorecard.roles import role_assign

    owner = role_assign(username="olga", role="operator", create=True)[0]
    scorecard = register(name)
    scorecard.rows.update(owner_user=owner)
    for check in Check.objects.runnable().filter(row__scorecard=scorecard).select_related("row"):
        evidence_append(check=check, status="PASS", summary="ok", measurements={}, collected_by="celery@w")
    (view,) = selectors.scorecard_views(scorecards=[scorecard])
    owner = get_user_model().objects.get(pk=owner.pk)
    for row in view.rows:
        services.row_sign_off(row=row.row, user=owner, comment="ok", status=row.status)
    return scorecard


def check_of(scorecard: Scorecard, kind: str = ProbeKind.CLUSTER_HEALTH) -> Check:
    return Check.objects.select_related("row__scorecard__cluster").get(row__scorecard=scorecard, kind=kind)


def probe(kind: str, connection, *, standby=None, cluster_id: int = 0, expected_brokers=None, **params):
    """Run one probe in-process with validated parameters."""
    from drills.probes import PROBES, ProbeContext

    ctx = ProbeContext(
        cluster_id=cluster_id,
        connection=connection,
        expected_brokers=expected_brokers,
        standby=standby,
        standby_name="standby" if standby else None,
    )
    return PROBES[kind](ctx, catalog.parse(kind, params))
