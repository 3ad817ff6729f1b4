"""The scorecard's own scheduled work: the full walk of every evidence chain."""

import logging

from celery import shared_task

from scorecard.evidence import chain_walk_all

log = logging.getLogger(__name__)


@shared_task(acks_late=True)
def walk_chains() -> dict[str, int]:
    """Sent by beat every CHAIN_WALK_SECONDS to the default queue."""
    result = chain_walk_all()
    log.info("evidence chains walked: %(whole)s whole, %(broken)s broken", result)
    return result
