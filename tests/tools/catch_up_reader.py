"""A consumer in a process of its own, as an SRE would run one beside a drill to check its
catch-up figure: `catch_up_reader.py BOOTSTRAP TOPIC PARTITIONS`.

It reads the topic's new records from the given partitions and takes commands on stdin:
`pause` and `resume` (the client's own pause/resume), then `stop`, which prints one JSON line:
how many probe records sent before the resume were read after it, and how long after the
resume the last of them was read. It shares nothing with the drill engine but the cluster and
the probe record layout (`...|seq|sent_ns` at the end of the value).
"""

import json
import sys
import threading
import time

from confluent_kafka import OFFSET_END, Consumer, TopicPartition


def main(argv: list[str]) -> int:
    bootstrap, topic, partitions = argv
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"catch-up-reference-{time.time_ns()}",
            "enable.auto.commit": False,
            # The drill reader's settings: librdkafka's defaults leave a resumed partition waiting
            # up to a second for its next fetch, a client timer rather than the cluster.
            "fetch.wait.max.ms": 20,
            "fetch.error.backoff.ms": 20,
            "reconnect.backoff.ms": 50,
            "topic.metadata.refresh.interval.ms": 50,
        }
    )
    assignment = [TopicPartition(topic, int(p), OFFSET_END) for p in partitions.split(",")]
    consumer.assign(assignment)
    commands: list[str] = []
    threading.Thread(target=lambda: commands.extend(line.strip() for line in sys.stdin), daemon=True).start()
    read: list[tuple[int, int]] = []  # (sent_ns, consumed_ns) of every probe record
    resumed_ns = None
    print("ready", flush=True)
    while True:
        while commands:
            command = commands.pop(0)
            if command == "pause":
                consumer.pause(assignment)
            elif command == "resume":
                consumer.resume(assignment)
                resumed_ns = time.time_ns()
            elif command == "stop":
                backlog = [consumed for sent, consumed in read if resumed_ns and sent < resumed_ns <= consumed]
                done_ns = max(backlog, default=resumed_ns or 0)
                seconds = (done_ns - resumed_ns) / 1e9 if resumed_ns else None
                print(json.dumps({"catch_up_s": seconds, "catch_up_records": len(backlog)}), flush=True)
                consumer.close()
                return 0
            print(command, flush=True)
        batch = consumer.consume(num_messages=1000, timeout=0.005)
        now = time.time_ns()
        for message in batch:
            if not message.error() and (message.value() or b"").startswith(b"krs1|"):
                read.append((int(message.value().rsplit(b"|", 1)[-1]), now))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
