"""Faults the drill applies to its own clients: a consumer group member that dies without
committing (consumer restart) and a canary group moved to the standby (standby cutover).
Lag catch-up needs no client of its own: the engine pauses the traffic's reader."""

import threading
import time
from collections.abc import Callable
from types import SimpleNamespace

from drills import kafka
from drills.offsets import synced_offset_problem

COMMIT_EVERY = 1.0


class ConsumerRestart:
    """A group member consumes and commits every second, dies without committing, and a new
    member must resume from the committed offsets with no gap."""

    def __init__(self, connection: kafka.ConnectionSettings, *, topic: str, group: str, event: Callable[..., None]):
        self.connection = connection
        self.topic = topic
        self.group = group
        self.event = event
        self.committed: dict[int, int] = {}
        self.figures: dict = {}
        self.resume_ns: int | None = None
        self._member: kafka.GroupReader | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        member = kafka.GroupReader(self.connection, topic=self.topic, group=self.group, timeout=10)
        self._member = member

        def consume():
            last_commit = time.monotonic()
            while not self._stop.is_set():
                member.poll(0.05)
                if time.monotonic() - last_commit >= COMMIT_EVERY:
                    self.committed = member.commit(self.topic)
                    last_commit = time.monotonic()

        self._thread = threading.Thread(target=consume, name="drill-group", daemon=True)
        self._thread.start()

    def kill(self) -> None:
        self._stop.set()
        self._thread.join(5)
        consumed_to = dict(self._member.positions)
        self._member.close()  # no commit: whatever it read since the last commit is not recorded
        self._member = None
        self.figures = {
            "committed": {str(p): o for p, o in self.committed.items()},
            "consumed_before_death": {str(p): o for p, o in consumed_to.items()},
            "reconsumed": sum(max(0, o - self.committed.get(p, o)) for p, o in consumed_to.items()),
        }
        self.event("consumer_killed", **self.figures)

    def resume(self, *, within: float) -> None:
        """A new member joins; records the first offset it reads on each committed partition."""
        self._member = kafka.GroupReader(self.connection, topic=self.topic, group=self.group, timeout=10)
        first: dict[int, int] = {}
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and len(first) < len(self.committed):
            for record in self._member.poll(0.1):
                if record.partition not in first:
                    first[record.partition] = record.offset
                    self.resume_ns = self.resume_ns or record.consumed_ns
        gaps = {p: first[p] - o for p, o in self.committed.items() if p in first}
        self.figures.update(
            {
                "first_offset_after_restart": {str(p): o for p, o in first.items()},
                "gap_records": sum(max(0, g) for g in gaps.values()),
                "partitions_resumed": len(first),
                "partitions_committed": len(self.committed),
            }
        )
        self.event("consumer_resumed", **self.figures)

    def close(self) -> None:
        self._stop.set()
        if self._member is not None:
            self._member.close()
            self._member = None


def standby_cutover(
    primary: kafka.ConnectionSettings, standby: kafka.ConnectionSettings, config: SimpleNamespace
) -> tuple[dict, int | None]:
    """A canary group moves to the standby: its synced offsets must exist and resume with no gap.
    Returns the figures and when the first record was read on the standby."""
    c = config
    metadata = kafka.cluster_metadata(standby, timeout=10, topic=c.canary_topic)
    partitions = [(c.canary_topic, p.id) for p in metadata.topic_partitions(c.canary_topic) if p.id >= 0]
    on_standby = kafka.committed_offsets(standby, group=c.canary_group, partitions=partitions, timeout=10)
    on_primary = kafka.committed_offsets(primary, group=c.canary_group, partitions=partitions, timeout=10)
    synced = {p: o for (_, p), o in on_standby.items() if o is not None}
    reader = kafka.GroupReader(standby, topic=c.canary_topic, group=c.canary_group, timeout=10)
    first: dict[int, int] = {}
    resume_ns = None
    try:
        deadline = time.monotonic() + max(10.0, c.fault_seconds)
        while synced and time.monotonic() < deadline and len(first) < len(synced):
            for record in reader.poll(0.1):
                if record.partition not in first:
                    first[record.partition] = record.offset
                    resume_ns = resume_ns or record.consumed_ns
    finally:
        reader.close()  # no commit: a rehearsal leaves the canary group's offsets where they were
    problems = [
        {"partition": p, "primary": on_primary.get((c.canary_topic, p)), "standby": o, "problem": problem}
        for p, o in sorted(synced.items())
        if on_primary.get((c.canary_topic, p)) is not None
        and (problem := synced_offset_problem(on_primary[(c.canary_topic, p)], o, max_lag=c.max_offset_lag))
    ]
    figures = {
        "canary_group": c.canary_group,
        "offset_problems": problems,
        "committed": {str(p): o for p, o in synced.items()},
        # None synced: nothing could resume, and every partition counts as not resumed.
        "partitions_committed": len(synced) or len(partitions),
        "partitions_without_synced_offsets": sorted(p for (_, p), o in on_standby.items() if o is None),
        "offset_lag_vs_primary": {str(p): (on_primary.get((c.canary_topic, p)) or 0) - o for p, o in synced.items()},
        "first_offset_after_restart": {str(p): o for p, o in first.items()},
        "gap_records": sum(max(0, first[p] - o) for p, o in synced.items() if p in first),
        "partitions_resumed": len(first),
    }
    return figures, resume_ns
