"""Acknowledged write (durability row): produce sequenced records with acks=all, read them
back while producing, verify every acknowledged record per partition by sequence number."""

import threading
import time
import uuid
from collections import Counter
from types import SimpleNamespace

from drills import kafka
from drills.probe_topic import ProbeTopicMissing, probe_topic_ready
from drills.probes.base import ProbeContext, ProbeResult, error
from drills.verify import by_partition, percentile, verify_partitions
from scorecard.models import Status
from scorecard.status import verdict


def _ms_or_none(ns: int | None) -> float | None:
    # A percentile of nanoseconds, then rounded: the same as the percentile of rounded
    # milliseconds (rounding keeps the order), without a float per record.
    return None if ns is None else round(ns / 1e6, 3)


def ack_write(ctx: ProbeContext, params: SimpleNamespace) -> ProbeResult:
    started = time.monotonic()
    timeout = params.timeout_seconds
    run = uuid.uuid4().hex[:12]
    try:
        topic = probe_topic_ready(
            ctx.connection, name=params.topic, replication_factor=params.replication_factor, timeout=timeout
        )
        partitions = topic.partitions
        start, unavailable = kafka.list_offsets(
            ctx.connection, [(params.topic, p.id) for p in partitions], timeout=timeout
        )
    except ProbeTopicMissing as exc:
        return error(exc.reason, probe_topic=params.topic)
    except kafka.KafkaCallError as exc:
        return error(exc.reason, elapsed_s=round(time.monotonic() - started, 3))

    # Partitions whose leader does not answer cannot be probed; the rest still are.
    ids = sorted(p for _, p in start)
    if not ids:
        return error(f"no partition of {params.topic} answered: {next(iter(unavailable.values()))}")
    start_offsets = {p: start[(params.topic, p)] for p in ids}
    not_leading = topic.not_leading
    ends: dict[int, int] | None = None
    consumed = kafka.ReadRecords()
    read_error: list[str] = []

    def reader():
        nonlocal consumed
        try:
            consumed = kafka.read_range(
                ctx.connection, topic=params.topic, run=run, start=start_offsets, end=lambda: ends, timeout=2 * timeout
            )
        except kafka.KafkaCallError as exc:
            read_error.append(exc.reason)

    thread = threading.Thread(target=reader, name="ack-write-reader", daemon=True)
    thread.start()
    try:
        produced = kafka.produce_sequenced(
            ctx.connection, topic=params.topic, partitions=ids, count=params.records, run=run, timeout=timeout
        )
        after, _ = kafka.list_offsets(ctx.connection, [(params.topic, p) for p in ids], timeout=timeout)
    except kafka.KafkaCallError as exc:
        ends = start_offsets
        thread.join(timeout + 5)
        return error(exc.reason, elapsed_s=round(time.monotonic() - started, 3))
    # Records went round-robin: partition ids[k] holds records k, k + len(ids), ...; an offset
    # is -1 for a record without one.
    acked_offsets = {p: max(produced.offsets[k :: len(ids)], default=-1) for k, p in enumerate(ids)}
    ends = {p: max(after.get((params.topic, p), 0), acked_offsets[p] + 1) for p in ids}
    thread.join(2 * timeout + 5)
    # Verification reads everything again from the start offsets once producing is over: a
    # record seen live but gone afterwards (a broker that lost it) must count as missing.
    try:
        read_back = kafka.read_range(
            ctx.connection, topic=params.topic, run=run, start=start_offsets, end=lambda: ends, timeout=timeout
        )
    except kafka.KafkaCallError as exc:
        read_back = kafka.ReadRecords()
        read_error.append(exc.reason)
    result = _result(
        params,
        run,
        ids,
        produced,
        consumed,
        read_back,
        read_error,
        not_leading,
        {f"{t}[{p}]": reason for (t, p), reason in sorted(unavailable.items())},
        started,
    )
    result.measurements["probe_topic"] = topic.as_dict()
    if topic.problems and result.status == Status.PASS:
        # A topic that cannot show every broker's loss is not a full verification.
        return ProbeResult(Status.WARN, f"{result.summary}; probe topic: {topic.problems[0]}", result.measurements)
    return result


def _result(
    params: SimpleNamespace,
    run: str,
    ids: list[int],
    produced: kafka.ProduceResult,
    consumed: kafka.ReadRecords,
    read_back: kafka.ReadRecords,
    read_error: list[str],
    not_leading: list[int],
    unavailable: dict[str, str],
    started: float,
) -> ProbeResult:
    sent, errors, width = len(produced), produced.errors, len(ids)
    # Record seq went to ids[seq % width]; it was acknowledged unless it has an error.
    acked = {
        p: range(k, sent, width) if not errors else [seq for seq in range(k, sent, width) if seq not in errors]
        for k, p in enumerate(ids)
    }
    checked = verify_partitions(
        sent={p: len(range(k, sent, width)) for k, p in enumerate(ids)},
        acked=acked,
        read=by_partition(read_back.partition, read_back.offset, read_back.seq),
    )
    totals = checked.as_dict()
    produce_ns = [
        a - s for seq, (a, s) in enumerate(zip(produced.acked_ns, produced.sent_ns, strict=True)) if seq not in errors
    ]
    # End-to-end latency comes from the live reader, which consumed while records were produced;
    # a record read twice counts from its first reading (sequences are unique within a run).
    e2e = [c - s for c, s in zip(consumed.consumed_ns, consumed.sent_ns, strict=True)]
    first_read = dict(zip(reversed(consumed.seq), reversed(e2e), strict=True))
    e2e_ns = list(first_read.values())
    error_counts = Counter(errors.values())
    elapsed = time.monotonic() - started
    measurements = {
        **totals,
        "topic": params.topic,
        "run": run,
        "produce_ms_p50": _ms_or_none(percentile(produce_ns, 0.5)),
        "produce_ms_p99": _ms_or_none(percentile(produce_ns, 0.99)),
        "e2e_ms_p50": _ms_or_none(percentile(e2e_ns, 0.5)),
        "e2e_ms_p99": _ms_or_none(percentile(e2e_ns, 0.99)),
        "consumed_live": len(first_read),
        "producer_init_ms": round(produced.producer_init_s * 1000, 1),
        "producer_fatal_error": produced.fatal_error,
        "produce_errors": dict(error_counts.most_common(10)),
        "read_error": read_error[0] if read_error else None,
        "brokers_not_leading": not_leading,
        "unavailable_partitions": unavailable,
        "elapsed_s": round(elapsed, 3),
        "records_verified_per_s": round(totals["acked"] / elapsed, 1) if elapsed > 0 else None,
    }
    if totals["acked"] == 0:
        reason = error_counts.most_common(1)[0][0] if error_counts else "unknown"
        return ProbeResult(Status.ERROR, f"no record acknowledged of {totals['sent']} sent ({reason})", measurements)
    summary = (
        f"{totals['acked']}/{totals['sent']} acknowledged, {totals['missing']} missing, "
        f"{totals['duplicates']} duplicated, {totals['reordered']} reordered; "
        f"produce p99 {measurements['produce_ms_p99']} ms"
        + (f"; {len(unavailable)} partitions unavailable" if unavailable else "")
        + (f"; brokers {not_leading} lead no probe partition" if not_leading else "")
        + (f"; producer fatal: {produced.fatal_error}" if produced.fatal_error else "")
    )
    status = verdict(
        fail=totals["missing"] or totals["reordered"],
        warn=totals["failed"]
        or totals["duplicates"]
        or not_leading
        or read_error
        or unavailable
        or produced.fatal_error,
    )
    return ProbeResult(status, summary, measurements)
