"""Every validator and the catalogue's parameter parsing, given anything: a clear refusal
(ValidationError or ValueError with a sentence) or a value that round-trips; never another
exception. Pure functions: many examples, no database."""

import json
import string

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from drills.actuators import Action, ActuatorError, CommandActuator
from scorecard import catalog, targets
from scorecard.models import validate_tags
from scorecard.validators import (
    MAX_JSON_DEPTH,
    PLACEHOLDERS,
    ca_certificates,
    describe_ca,
    json_nesting_problem,
    load_json,
    parse_bootstrap_servers,
    placeholder_value_problem,
    validate_command_templates,
    validate_queue_name,
    validate_storable_json,
)
from tests.factories import ca_pem
from tests.fuzz.strategies import deep_json, fuzz, hostile_text, json_text, json_values

hosts = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?){0,3}", fullmatch=True)


def refused_clearly(call, *args, errors=(ValidationError, ValueError)):
    """The call's value, or None when it refused with a message."""
    try:
        return call(*args)
    except errors as exc:
        message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        assert message.strip(), f"{call.__name__} refused without saying why"
        return None


@fuzz(400)
@given(st.one_of(hostile_text(), st.lists(hostile_text(), max_size=40).map(",".join)))
def test_bootstrap_servers_refuse_anything_but_host_port(value):
    servers = refused_clearly(parse_bootstrap_servers, value)
    for host, port in servers or []:
        assert 1 <= port <= 65535
        assert not host.startswith("-"), "a host that reads as an option"
        assert all(c in string.ascii_letters + string.digits + ".-:" for c in host)


@fuzz(100)
@given(st.lists(st.tuples(hosts, st.integers(1, 65535)), min_size=1, max_size=32))
def test_valid_bootstrap_servers_round_trip(pairs):
    text = ",".join(f"{host}:{port}" for host, port in pairs)
    assert parse_bootstrap_servers(text) == pairs


@fuzz(300)
@given(hostile_text())
def test_queue_names_and_tags_refuse_or_pass(value):
    refused_clearly(validate_queue_name, value)
    refused_clearly(validate_tags, value)


@fuzz(150)
@given(
    st.one_of(
        hostile_text(), hostile_text().map(lambda s: f"-----BEGIN CERTIFICATE-----\n{s}\n-----END CERTIFICATE-----")
    )
)
def test_ca_text_is_a_certificate_or_refused(value):
    certificates = refused_clearly(ca_certificates, value)
    assert certificates in (None, [])  # nothing generated here is a real certificate
    assert all(line for line in describe_ca(value))


def test_a_real_ca_round_trips():
    pem = ca_pem("Fuzz Root")
    assert len(ca_certificates(pem)) == 1
    assert "CN=Fuzz Root" in describe_ca(pem)[0]


templates = st.fixed_dictionaries(
    {
        op: st.lists(st.one_of(hostile_text(), st.sampled_from(["{host}", "{port}", "--x={broker}"])), max_size=5)
        for op in ("broker_down", "broker_up")
    },
    optional={"timeout_seconds": st.one_of(st.integers(), st.booleans(), hostile_text()), "extra": json_values()},
)


@fuzz(400)
@given(st.one_of(templates, json_values()))
def test_command_templates_refused_with_a_sentence_or_safe(value):
    try:
        validate_command_templates(value)
    except ValueError as exc:
        assert str(exc)
        return
    for op in ("broker_down", "broker_up"):
        for arg in value[op]:
            assert "\x00" not in arg and not any(0xD800 <= ord(c) <= 0xDFFF for c in arg)
            fields = {f for _, f, _, _ in string.Formatter().parse(arg) if f is not None}
            assert fields <= PLACEHOLDERS
        assert not value[op][0].startswith("-")


brokers = st.fixed_dictionaries(
    {
        "host": hostile_text(),
        "port": st.one_of(st.integers(), hostile_text()),
        "rack": st.one_of(st.none(), hostile_text()),
    }
)


@fuzz(400)
@given(brokers, st.integers(-5, 10**7))
def test_no_placeholder_value_reaches_the_argv_as_an_option(broker, broker_id):
    """What the cluster advertises (host, port, rack) fills the placeholders: a value that could
    be read as an option, or holds anything but host and rack characters, is refused."""
    actuator = CommandActuator(
        {"broker_down": ["ssh", "{host}", "-p", "{port}", "stop", "{broker}", "{rack}"], "broker_up": ["true"]},
        {broker_id: broker},
    )
    try:
        argv = actuator.argv(Action("broker_down", broker_id))
    except ActuatorError as exc:
        assert "refusing" in str(exc)
        return
    for arg in argv[1:]:
        assert arg == "-p" or not arg.startswith("-"), argv
        assert all(c in string.ascii_letters + string.digits + "._:-" for c in arg), argv


@fuzz(300)
@given(st.sampled_from(sorted(PLACEHOLDERS)), hostile_text())
def test_placeholder_values_starting_with_a_dash_are_refused(name, value):
    problem = placeholder_value_problem(name, "-" + value)
    assert "starts with '-'" in problem


@fuzz(300)
@given(json_text())
def test_json_is_refused_before_parsing_when_huge_or_deep(text):
    try:
        value = load_json(text, max_bytes=20_000, max_depth=MAX_JSON_DEPTH)
    except ValueError as exc:
        assert str(exc)
        return
    assert json.loads(text) == value or value != value  # NaN is not equal to itself
    validate_storable_json(value) if len(text) < 10_000 else None


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_000, 100_000, 2_000_000])
def test_deep_json_is_refused_without_recursion(depth):
    text = deep_json(depth)
    assert json_nesting_problem(text, max_bytes=10**8, max_depth=MAX_JSON_DEPTH).startswith("nested deeper")
    with pytest.raises(ValueError, match="at most 20,000 bytes|nested deeper"):
        load_json(text)


@pytest.mark.parametrize("value", [{"a": "\x00"}, {"\x00": 1}, ["\ud800"], {"a": [{"b": "x\x00"}]}])
def test_json_holding_what_postgresql_cannot_store_is_refused(value):
    with pytest.raises(ValidationError, match="NUL character or a lone surrogate"):
        validate_storable_json(value)


params = st.dictionaries(
    st.one_of(st.sampled_from(sorted({p.name for s in catalog.SPECS.values() for p in s})), hostile_text()),
    json_values(),
    max_size=6,
)


@fuzz(250)
@given(st.sampled_from(sorted(catalog.SPECS)), params)
def test_catalog_parameters_are_parsed_or_each_refused_by_name(kind, raw):
    try:
        parsed = vars(catalog.parse(kind, raw))
    except catalog.ParamError as exc:
        assert exc.errors and all(message for message in exc.errors.values())
        return
    again = vars(catalog.parse(kind, {k: v for k, v in parsed.items() if v is not None}))
    assert again == parsed, "parsed parameters round-trip"


@fuzz(150)
@given(
    st.sampled_from(["durability", "metadata", "client_continuity", "automation", "cost"]),
    st.dictionaries(
        hostile_text(), st.one_of(json_values(), st.dictionaries(hostile_text(), json_values())), max_size=4
    ),
)
def test_row_targets_are_validated_or_refused(row_key, raw):
    try:
        valid = targets.validate_targets(row_key, raw)
    except ValueError as exc:
        assert str(exc)
        return
    assert targets.validate_targets(row_key, valid) == valid


@pytest.mark.parametrize(
    ("text", "tokens"),
    [('"' + '\\"' * 50_000, 1), ('["' + "\\\\" * 50_000, 2), ('{"a": "' + "[" * 50_000, 3)],
    ids=["escaped quotes", "escaped backslashes", "brackets"],
)
def test_an_unterminated_string_is_one_token_to_the_end_so_the_scan_is_linear(text, tokens):
    """A pattern that failed on an unterminated string retried from every quote inside it
    (minutes of CPU on 500 KB, found in review); now the string runs to the end of the text,
    json.loads refuses it, and its brackets are not counted."""
    from scorecard.validators import _JSON_TOKENS, json_nesting_problem

    found = list(_JSON_TOKENS.finditer(text))
    assert len(found) == tokens and found[-1].end() == len(text)
    assert json_nesting_problem(text, max_bytes=len(text), max_depth=20) == ""
    with pytest.raises(ValueError, match="JSON"):
        load_json(text, max_bytes=len(text))
