"""The scorecard's own scheduled work: the full walk of every evidence chain, and readiness
samples for the trend."""

import logging

from celery import shared_task

from scorecard.evidence import chain_walk_all
from scorecard.trends import readiness_sample_all

log = logging.getLogger(__name__)


@shared_task(acks_late=True)
def walk_chains() -> dict[str, int]:
    """Sent by beat every CHAIN_WALK_SECONDS to the default queue."""
    result = chain_walk_all()
    log.info("evidence chains walked: %(whole)s whole, %(broken)s broken", result)
    return result


@shared_task(acks_late=True)
def sample_readiness() -> int:
    """Sent by beat every READINESS_SAMPLE_SECONDS to the default queue."""
    return readiness_sample_all()


@shared_task(acks_late=True)
def build_audit_export(export_id: int) -> None:
    """Sent when someone asks for an audit PDF on a page; runs on the default queue."""
    from scorecard.report import export_build

    export_build(export_id=export_id)
