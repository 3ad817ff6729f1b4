"""Produce-consume validation: what was acknowledged against what can be read back."""

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

MAX_LISTED = 20


@dataclass
class PartitionVerdict:
    partition: int
    sent: int = 0
    acked: int = 0
    failed: int = 0
    consumed: int = 0
    missing: int = 0
    duplicates: int = 0
    reordered: int = 0
    missing_seqs: list[int] = field(default_factory=list)


@dataclass
class Verdict:
    partitions: dict[int, PartitionVerdict]

    def total(self, name: str) -> int:
        return sum(getattr(p, name) for p in self.partitions.values())

    def as_dict(self) -> dict:
        return {
            "sent": self.total("sent"),
            "acked": self.total("acked"),
            "failed": self.total("failed"),
            "consumed": self.total("consumed"),
            "missing": self.total("missing"),
            "duplicates": self.total("duplicates"),
            "reordered": self.total("reordered"),
            "partitions": {
                str(p.partition): vars(p) for p in sorted(self.partitions.values(), key=lambda p: p.partition)
            },
        }


def verify_sequences(
    *,
    deliveries: Iterable[tuple[int, int, bool]],
    consumed: Iterable[tuple[int, int, int]],
) -> Verdict:
    """Compare delivery reports with records read back, per partition by sequence number.

    deliveries: (partition, seq, acknowledged). consumed: (partition, offset, seq) of this
    run's records. An acknowledged sequence never read is missing; a sequence read twice is
    a duplicate; a first reading of a sequence below one already read is reordered.
    """
    verdicts: dict[int, PartitionVerdict] = {}
    acked: dict[int, set[int]] = defaultdict(set)

    def verdict(partition: int) -> PartitionVerdict:
        return verdicts.setdefault(partition, PartitionVerdict(partition))

    for partition, seq, ok in deliveries:
        v = verdict(partition)
        v.sent += 1
        if ok:
            v.acked += 1
            acked[partition].add(seq)
        else:
            v.failed += 1

    seen: dict[int, set[int]] = defaultdict(set)
    highest: dict[int, int] = {}
    for partition, _offset, seq in sorted(consumed, key=lambda r: (r[0], r[1])):
        v = verdict(partition)
        v.consumed += 1
        if seq in seen[partition]:
            v.duplicates += 1
            continue
        if partition in highest and seq < highest[partition]:
            v.reordered += 1
        seen[partition].add(seq)
        highest[partition] = max(seq, highest.get(partition, seq))

    for partition, seqs in acked.items():
        missing = sorted(seqs - seen[partition])
        verdicts[partition].missing = len(missing)
        verdicts[partition].missing_seqs = missing[:MAX_LISTED]
    return Verdict(verdicts)


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(fraction * len(ordered))
    return ordered[min(len(ordered), max(1, rank)) - 1]


class PollWatch:
    """What a live consumer's successive reads show, partition by partition (the anomalies
    Jepsen's Kafka workload checks): a *poll skip* jumps over offsets the consumer should have
    seen; a *non-monotonic poll* goes back to an offset it already passed, with no restart or
    rebalance to explain it (the drill's reader never restarts). Each keeps its first examples."""

    def __init__(self):
        self.last: dict[int, int] = {}
        self.skips: dict[int, dict] = {}
        self.backwards: dict[int, dict] = {}

    @staticmethod
    def _note(found: dict[int, dict], partition: int, example: list[int]) -> None:
        entry = found.setdefault(partition, {"count": 0, "examples": []})
        entry["count"] += 1
        if len(entry["examples"]) < MAX_LISTED:
            entry["examples"].append(example)

    def observe(self, partition: int, offset: int) -> None:
        last = self.last.get(partition)
        if last is not None:
            if offset > last + 1:
                self._note(self.skips, partition, [last, offset])
            elif offset <= last:
                self._note(self.backwards, partition, [last, offset])
        self.last[partition] = offset if last is None else max(last, offset)

    def as_dict(self) -> dict:
        return {
            "poll_skips": {str(p): v for p, v in sorted(self.skips.items())},
            "non_monotonic_polls": {str(p): v for p, v in sorted(self.backwards.items())},
        }


def unseen_by_reader(acked: Iterable[tuple[int, int]], consumed: set[tuple[int, int]]) -> dict:
    """The (partition, seq) given that the live reader never read, per partition, first examples."""
    unseen: dict[int, list[int]] = defaultdict(list)
    for partition, seq in acked:
        if (partition, seq) not in consumed:
            unseen[partition].append(seq)
    return {str(p): {"count": len(seqs), "examples": sorted(seqs)[:MAX_LISTED]} for p, seqs in sorted(unseen.items())}
