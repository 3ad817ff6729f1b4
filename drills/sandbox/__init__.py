"""The sandbox cluster: librdkafka's mock cluster (bundled with confluent-kafka) in its own process.

- control: the client of the control channel and the state file (what other processes import;
  no ctypes, no Kafka client)
- mock: the ctypes mock cluster
- server: the control channel server and `spawn`, which starts `manage.py sandbox`

Importing this package imports none of them.
"""
