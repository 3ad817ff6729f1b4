"""A Celery beat scheduler whose schedule is the Check table.

Each applicable check is an entry that sends `run_scheduled_check(check_id)` every
`interval_seconds` to its cluster's worker queue. Each reload also starts scheduled drills
whose window is open (drills.schedules), and an entry walks every evidence chain in full
every CHAIN_WALK_SECONDS on the default queue. The table is re-read every few seconds,
so edits on the scorecard page take effect without restarting beat; the time each check
was last sent is stored on the check, so a restarted beat does not fire everything at once.

(django-celery-beat would be the usual choice; its current release, 2.9.0, requires
Django < 6.1.)
"""

import logging
import time
from datetime import timedelta

from celery.beat import ScheduleEntry, Scheduler
from celery.schedules import schedule
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

log = logging.getLogger(__name__)

RELOAD_SECONDS = 5.0
# One drill watchdog per queue that serves clusters allowing drills: recovery must reach a
# worker that can reach the cluster, whatever queues other workers serve.
WATCHDOG = "drill-watchdog:"
WATCHDOG_SECONDS = 15
CHAIN_WALK = "evidence-chain-walk"
READINESS_SAMPLE = "readiness-sample"


class CheckScheduler(Scheduler):
    def setup_schedule(self) -> None:
        self.data: dict[str, ScheduleEntry] = {}
        self._unrecorded: set[str] = set()
        self._loaded_at = 0.0
        self._load()

    @property
    def schedule(self) -> dict[str, ScheduleEntry]:
        if time.monotonic() - self._loaded_at > RELOAD_SECONDS:
            self._load()
        return self.data

    def _load(self) -> None:
        try:
            self._read_checks()
        except DatabaseError:
            # PostgreSQL restarting: keep sending the schedule read last, read it again at the
            # next reload, and outlive the outage instead of exiting.
            log.warning("the schedule could not be read; keeping the last one until the next reload", exc_info=True)
            close_old_connections()
            self._loaded_at = time.monotonic()

    def _read_checks(self) -> None:
        # Imported here: beat loads this module before Django's apps are ready.
        from drills.schedules import schedules_tick
        from drills.services import runs_abandoned_expire, runs_never_queued_expire
        from drills.tasks import drill_watchdog, run_scheduled_check
        from scorecard.models import Check, Cluster
        from scorecard.report import exports_expire
        from scorecard.tasks import sample_readiness, walk_chains

        close_old_connections()
        now = timezone.now()
        runs_never_queued_expire()
        runs_abandoned_expire()
        exports_expire()
        try:
            for schedule_id, outcome in schedules_tick(now).items():
                if outcome not in ("nothing due", "busy"):
                    log.info("drill schedule %s: %s", schedule_id, outcome)
        except Exception:  # beat must outlive a bad schedule or a database blip
            log.exception("scheduled drills could not be checked; trying again at the next reload")
        entries = {
            name: self._periodic(name, task.name, seconds, now)
            for name, task, seconds in (
                (CHAIN_WALK, walk_chains, settings.CHAIN_WALK_SECONDS),
                (READINESS_SAMPLE, sample_readiness, settings.READINESS_SAMPLE_SECONDS),
            )
        }
        checks = Check.objects.runnable().select_related("row__scorecard__cluster")
        for check in checks:
            name = f"check-{check.pk}"
            every = timedelta(seconds=check.interval_seconds)
            # A check never sent is due now; otherwise continue from when it was last sent.
            last = check.last_scheduled_at or (now - every)
            previous = self.data.get(name)
            if previous is not None and previous.last_run_at and previous.last_run_at > last:
                last = previous.last_run_at
            entries[name] = ScheduleEntry(
                name=name,
                task=run_scheduled_check.name,
                schedule=schedule(run_every=every, app=self.app),
                args=(check.pk,),
                options={"queue": check.row.scorecard.cluster.worker_queue},
                last_run_at=last,
                app=self.app,
            )
        queues = Cluster.objects.filter(drills_allowed=True).values_list("worker_queue", flat=True).distinct()
        for queue in queues:
            name = f"{WATCHDOG}{queue}"
            watchdog = self.data.get(name)
            entries[name] = ScheduleEntry(
                name=name,
                task=drill_watchdog.name,
                schedule=schedule(run_every=timedelta(seconds=WATCHDOG_SECONDS), app=self.app),
                args=(queue,),
                # A queue nobody serves must not pile up watchdogs: each is useful for one period.
                options={"queue": queue, "expires": WATCHDOG_SECONDS * 2},
                last_run_at=watchdog.last_run_at if watchdog else now,
                app=self.app,
            )
        self.data = entries
        self._loaded_at = time.monotonic()

    def _periodic(self, name: str, task: str, seconds: int, now) -> ScheduleEntry:
        """A task of the record's own on the default queue: first soon after beat starts."""
        previous = self.data.get(name)
        return ScheduleEntry(
            name=name,
            task=task,
            schedule=schedule(run_every=timedelta(seconds=seconds), app=self.app),
            options={"queue": settings.CELERY_TASK_DEFAULT_QUEUE},
            last_run_at=previous.last_run_at if previous else now - timedelta(seconds=seconds),
            app=self.app,
        )

    def reserve(self, entry: ScheduleEntry) -> ScheduleEntry:
        """Record when a check is sent before it is sent (Celery's tick reserves, then sends):
        a beat killed in between skips that one time, never sends it twice after a restart."""
        from scorecard.models import Check

        new_entry = super().reserve(entry)
        if entry.name.startswith("check-"):
            try:
                Check.objects.filter(pk=entry.args[0]).update(last_scheduled_at=new_entry.last_run_at)
            except DatabaseError:
                # Unrecorded, a send could be repeated by a beat restarted before the next write:
                # skip this due time instead (the entry has moved on to the next one).
                log.warning("%s not sent: the database did not record it; next at its next due time", entry.name)
                close_old_connections()
                self._unrecorded.add(entry.name)
        return new_entry

    def apply_entry(self, entry: ScheduleEntry, producer=None) -> None:
        if entry.name in self._unrecorded:
            self._unrecorded.discard(entry.name)
            return
        super().apply_entry(entry, producer=producer)

    def sync(self) -> None:
        """Nothing to write back: reserve() already stored when each check was sent."""
