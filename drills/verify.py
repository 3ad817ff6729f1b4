"""Produce-consume validation: what was acknowledged against what can be read back."""

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from operator import le, lt

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
    sent: dict[int, int] = {}
    acked: dict[int, list[int]] = {}
    for partition, seq, ok in deliveries:
        sent[partition] = sent.get(partition, 0) + 1
        if ok:
            acked.setdefault(partition, []).append(seq)
    read: dict[int, tuple[list[int], list[int]]] = {}
    for partition, offset, seq in consumed:
        offsets, seqs = read.setdefault(partition, ([], []))
        offsets.append(offset)
        seqs.append(seq)
    return verify_partitions(sent=sent, acked=acked, read=read)


def verify_partitions(
    *,
    sent: dict[int, int],
    acked: dict[int, Iterable[int]],
    read: dict[int, tuple[Sequence[int], Sequence[int]]],
) -> Verdict:
    """verify_sequences on columns, for hundreds of thousands of records: per partition, how
    many records were sent, the acknowledged sequences, and the (offsets, sequences) read back."""
    verdicts: dict[int, PartitionVerdict] = {}
    for partition in (*sent, *(p for p in read if p not in sent)):
        v = verdicts[partition] = PartitionVerdict(partition)
        v.sent = sent.get(partition, 0)
        acked_list = list(acked.get(partition, ()))
        acked_seqs = set(acked_list)
        v.acked = len(acked_list)
        v.failed = v.sent - v.acked
        offsets, seqs = read.get(partition, ((), ()))
        v.consumed = len(seqs)
        seen, v.duplicates, v.reordered = _first_readings(_in_offset_order(offsets, seqs))
        missing = acked_seqs - seen
        v.missing = len(missing)
        v.missing_seqs = sorted(missing)[:MAX_LISTED]
    return Verdict(verdicts)


def by_partition(
    partitions: Iterable[int], offsets: Iterable[int], seqs: Iterable[int]
) -> dict[int, tuple[list[int], list[int]]]:
    """Records read, as columns, grouped into (offsets, sequences) per partition."""
    read: dict[int, tuple[list[int], list[int]]] = {}
    for partition, offset, seq in zip(partitions, offsets, seqs, strict=True):
        group = read.get(partition)
        if group is None:
            group = read[partition] = ([], [])
        group[0].append(offset)
        group[1].append(seq)
    return read


def _in_offset_order(offsets: Sequence[int], seqs: Sequence[int]) -> Sequence[int]:
    """The sequences in the order of their offsets (as read, for a reader that never went back)."""
    if all(map(le, offsets, islice(offsets, 1, None))):
        return seqs
    return [seqs[i] for i in sorted(range(len(offsets)), key=offsets.__getitem__)]


def _first_readings(seqs: Sequence[int]) -> tuple[set[int], int, int]:
    """The sequences read, how many readings repeated one, and how many first readings came
    below one already read."""
    if all(map(lt, seqs, islice(seqs, 1, None))):
        return set(seqs), 0, 0  # the usual case, checked at C speed: strictly rising
    seen: set[int] = set()
    duplicates = reordered = 0
    highest = None
    for seq in seqs:
        if seq in seen:
            duplicates += 1
            continue
        if highest is not None and seq < highest:
            reordered += 1
        else:
            highest = seq
        seen.add(seq)
    return seen, duplicates, reordered


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

    def observe_many(self, partitions: Sequence[int], offsets: Sequence[int]) -> None:
        """observe() for each record of a batch, as the reader got them."""
        last_of = self.last
        for partition, offset in zip(partitions, offsets, strict=True):
            last = last_of.get(partition)
            if last is None or offset == last + 1:  # the usual case: the next offset
                last_of[partition] = offset
            else:
                self.observe(partition, offset)

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
