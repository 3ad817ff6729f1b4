import struct

import pytest

from drills.protocol import (
    ApiRange,
    ProtocolError,
    api_versions,
    decode_api_versions_response,
    encode_api_versions_request,
)


def response(correlation_id=7, error=0, entries=((0, 0, 9), (18, 0, 3)), count=None):
    body = struct.pack(">ihi", correlation_id, error, len(entries) if count is None else count)
    return body + b"".join(struct.pack(">hhh", *e) for e in entries)


def test_the_request_is_a_size_prefixed_v0_api_versions_header():
    frame = encode_api_versions_request(7, "me")
    size, key, version, correlation, client_len = struct.unpack_from(">ihhih", frame)
    assert (size, key, version, correlation, client_len) == (len(frame) - 4, 18, 0, 7, 2)
    assert frame.endswith(b"me")


def test_it_decodes_the_advertised_ranges():
    ranges = decode_api_versions_response(response(), 7)
    assert ranges == [ApiRange(0, 0, 9), ApiRange(18, 0, 3)]
    assert [r.name for r in ranges] == ["Produce", "ApiVersions"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (response()[:5], "truncated"),
        (response(correlation_id=8), "correlation id 8"),
        (response(error=35), "error code 35"),
        (response(count=5), "claims 5 entries"),
        (response(count=-1), "claims -1 entries"),
    ],
)
def test_it_rejects_malformed_answers(payload, message):
    with pytest.raises(ProtocolError, match=message):
        decode_api_versions_response(payload, 7)


def test_it_reads_a_real_brokers_answer(shared_sandbox):
    host, port = shared_sandbox.bootstrap.split(",")[0].split(":")
    names = {r.name for r in api_versions(host, int(port), timeout=5)}
    assert {"Produce", "Fetch", "Metadata", "InitProducerId"} <= names
    assert "DescribeConfigs" not in names  # the sandbox's known gap
