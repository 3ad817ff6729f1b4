"""The scorecard as code: a cluster's configuration exported as YAML, and YAML imported back,
validated as a whole (every error with its line), shown as a diff, applied all or nothing.

Configuration is what people decide: the cluster's non-secret connection settings, the five
rows (owners, tests, rollback conditions and their guardrails, targets), the checks' parameters
and schedules, and the sections other apps register here (drill schedules, from `drills`, which
this app never imports: `drills/config_sections.py` registers itself). Deliberately not
configuration: secrets, NOT APPLICABLE marks and sign-offs (acts of two people or of an owner,
which a file must not perform), evidence, runs and team membership. docs/config-as-code.md.

A key left out of the YAML takes the value a newly registered cluster has, so the file is the
whole truth about what it covers. Changes go through the same services as the pages, with the
same role rules, so each gets its usual audit event.
"""

import hashlib
import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import yaml
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import DatabaseError, IntegrityError, models, transaction
from django.utils.module_loading import autodiscover_modules

from scorecard import audit, catalog, roles, services
from scorecard.catalog import PROBE_ROWS, ProbeKind, RowKey
from scorecard.forms import may_loosen
from scorecard.models import Actuator, Check, Cluster, Row, Scorecard, Team, split_tags
from scorecard.secrets import SecretUnreadable
from scorecard.targets import GUARDRAILS, loosenings, validate_targets
from scorecard.validators import validate_command_templates

log = logging.getLogger(__name__)

# libyaml parses large documents several times faster; the pure-Python parser is the fallback.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
VERSION = 1
MAX_BYTES = 1_000_000
MAX_DEPTH = 12  # the schema needs 7 (rows.<key>.checks.<kind>.params.<name>: [..]); room for mistakes
MAX_ERRORS = 100  # a broken 1 MB file can have 100,000 problems: the first ones are enough to act on
MAX_SECTION_ITEMS = 50  # per cluster; each is validated and diffed one by one
# Whole numbers are stored in 64-bit columns. A longer literal is refused before int() runs: a
# base-60 one (1:2:3:...) takes quadratic time to build.
MAX_INT = 2**63
MAX_INT_CHARS = 70  # -0b and 64 binary digits, the longest way to write a value inside MAX_INT
SECRET_MESSAGE = "secrets are never imported from YAML; set the SASL password on the cluster's page"
SECRET_KEY = re.compile(r"passw(or)?d|passphrase|secret|token|private[_-]?key|api[_-]?key|credential", re.I)
# PEM and PGP armour. Matched in the source (for the exact line) and in the value with its
# whitespace removed (a folded scalar, or a header spelt with escapes, hides it from the source).
PRIVATE_KEY = re.compile(r"-----\s*BEGIN[A-Z0-9\s]*PRIVATE\s*KEY(\s*BLOCK)?\s*-----", re.I)
# PostgreSQL text and jsonb cannot hold NUL, and no one means the other C0 controls; a lone
# surrogate cannot be encoded at all.
UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
# NEL and the Unicode line and paragraph separators are line breaks to a YAML reader: only
# escaped in double quotes do they come back as they were.
YAML_BREAKS = re.compile("[\x85\u2028\u2029]")
HEADER = """\
# The scorecard of {name} as code (manage.py scorecard_config, docs/config-as-code.md).
# Never in this file: secrets (set the SASL password on the cluster's page), NOT APPLICABLE
# marks and sign-offs (two-person and owner acts, not configuration), evidence and runs.
"""

Path = tuple[str | int, ...]
Errors = list[tuple[int, str]]  # (line, message); line 0 = the document as a whole


class ConfigError(Exception):
    """The YAML was refused; `errors` holds every problem found as (line, message)."""

    def __init__(self, errors: Errors):
        self.errors = sorted(errors)[:MAX_ERRORS]
        if len(errors) > MAX_ERRORS:
            self.errors.append((0, f"and {len(errors) - MAX_ERRORS} more problems"))
        super().__init__("\n".join(f"line {line}: {message}" if line else message for line, message in self.errors))

    def lines(self, filename: str) -> list[str]:
        """`FILE:LINE: message`, as compilers print them."""
        return [f"{filename}:{line}: {message}" if line else f"{filename}: {message}" for line, message in self.errors]


class ConfigRefused(ConfigError):
    """Valid YAML whose changes the importing user's roles do not allow."""


class ConfigStale(ConfigError):
    """The scorecard changed between the diff shown and the confirmation."""


@dataclass(frozen=True)
class Section:
    """A top-level list of the YAML that another app owns (drill schedules: `drills`). Items
    have no key: a changed item is the old one removed and the new one added."""

    key: str
    permission: str
    action: str  # for a refusal: "<user> may not <action>"
    fields: tuple[str, ...]
    export: Callable[[Cluster], list[dict]]
    clean: Callable[[dict, Cluster], dict]  # one item, normalized; ValidationError by field
    apply: Callable[..., None]  # (*, cluster, removed, added, by)


_SECTIONS: dict[str, Section] = {}


def register_section(section: Section) -> None:
    _SECTIONS[section.key] = section


@cache
def _discover() -> None:
    autodiscover_modules("config_sections")


def sections() -> list[Section]:
    _discover()
    return list(_SECTIONS.values())


@dataclass(frozen=True)
class Change:
    path: str
    before: Any
    after: Any
    line: int
    keys: tuple = field(default=(), repr=False, compare=False)  # the path as keys, for the role rules

    def as_dict(self) -> dict:
        return {"path": self.path, "before": self.before, "after": self.after, "line": self.line}

    @property
    def before_text(self) -> str:
        return _show(self.before)

    @property
    def after_text(self) -> str:
        return _show(self.after)


@dataclass
class Plan:
    """What an import would change, what the user may not change, and a digest of the YAML and
    the state it was compared with (a confirmation must bring it back unchanged)."""

    cluster_name: str
    cluster_id: int | None  # None until a new cluster is registered
    new: bool
    changes: list[Change]
    refusals: Errors
    warnings: list[str]
    digest: str

    @property
    def allowed(self) -> bool:
        return not self.refusals

    def as_dict(self) -> dict:
        return {
            "cluster": self.cluster_name,
            "cluster_id": self.cluster_id,
            "new": self.new,
            "changes": [change.as_dict() for change in self.changes],
            "refusals": [{"line": line, "message": message} for line, message in self.refusals],
            "warnings": self.warnings,
            "allowed": self.allowed,
            "digest": self.digest,
        }


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# --- export ------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Safe dumping, with multi-line text as literal blocks (a CA certificate stays readable) and
    lists of plain values on one line."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # Times quoted: YAML 1.1 reads an unquoted 12:30 as a number (750), so show the safe way.
    # Text with CR (typed in a browser) stays double-quoted with escapes, as the emitter picks:
    # the pages keep CRLF as typed, so only the escaped form reimports exactly.
    if YAML_BREAKS.search(value):
        style = '"'
    elif "\n" in value:
        style = "|"
    else:
        style = "'" if re.fullmatch(r"\d\d:\d\d(:\d\d)?", value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _represent_list(dumper: yaml.SafeDumper, value: list) -> yaml.Node:
    flat = all(not isinstance(item, dict | list) for item in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flat)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_multi_representer(str, _represent_str)  # TextChoices members of unsaved objects
_Dumper.add_representer(list, _represent_list)


def _dump(state: dict) -> str:
    # Long lines unwrapped: a changed sentence is then one changed line in a Git diff.
    return yaml.dump(state, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1_000_000)


def config_export(*, scorecard: Scorecard) -> str:
    """The scorecard's configuration as YAML, the same for the same state."""
    cluster = scorecard.cluster
    return HEADER.format(name=cluster.name) + _dump(_state(cluster))


def _kind_order(kind: str) -> int:
    return ProbeKind.values.index(kind)


def _cluster_state(cluster: Cluster) -> dict:
    return {
        "name": cluster.name,
        "environment": cluster.environment,
        "tags": cluster.tag_list,
        "team": cluster.team.name if cluster.team_id else None,
        "bootstrap_servers": [entry.strip() for entry in cluster.bootstrap_servers.split(",") if entry.strip()],
        "security_protocol": cluster.security_protocol,
        "sasl_mechanism": cluster.sasl_mechanism,
        "sasl_username": cluster.sasl_username,
        "ssl_ca_pem": cluster.ssl_ca_pem,
        "expected_brokers": cluster.expected_brokers,
        "worker_queue": cluster.worker_queue,
        "standby": cluster.standby.name if cluster.standby_id else None,
        "drills_allowed": cluster.drills_allowed,
        "actuator": cluster.actuator,
        "sandbox_control": cluster.sandbox_control,
        "actuator_commands": dict(sorted((cluster.actuator_commands or {}).items())),
    }


def _ordered_params(kind: str, params: dict) -> dict:
    names = [p.name for p in catalog.SPECS.get(kind, ())]
    return {**{n: params[n] for n in names if n in params}, **{k: v for k, v in params.items() if k not in names}}


def _check_state(kind: str, interval_seconds: int, max_age_seconds: int, params: dict) -> dict:
    return {
        "interval_seconds": interval_seconds,
        "max_age_seconds": max_age_seconds,
        "params": _ordered_params(kind, params),
    }


def _row_state(row: Row, checks: list[Check]) -> dict:
    return {
        "owner": row.owner,
        "owner_contact": row.owner_contact,
        "owner_user": row.owner_user.get_username() if row.owner_user_id else None,
        "test": row.test_description,
        "rollback_condition": row.rollback_condition,
        "guardrails": {name: getattr(row, attname) for name, (attname, _, _) in GUARDRAILS.items()},
        "target": row.target,
        "targets": row.targets or {},
        # Drill results are where drills record, never configured: a drill creates that check.
        "checks": {
            c.kind: _check_state(c.kind, c.interval_seconds, c.max_age_seconds, c.params)
            for c in sorted(checks, key=lambda c: _kind_order(c.kind))
            if c.kind != ProbeKind.DRILL_RESULTS
        },
    }


def _configured(cluster: Cluster, checks) -> list[Check]:
    """The checks that are configuration. A standby parity check stays when its standby is
    removed (checks keep their evidence), but it is left out until a standby is set again: a
    cluster without a standby cannot have the check configured, so an export that held it could
    not be imported into an empty database."""
    return [c for c in checks if c.kind != ProbeKind.STANDBY_PARITY or cluster.standby_id]


def _state(cluster: Cluster) -> dict:
    rows = Row.objects.filter(scorecard__cluster=cluster).select_related("owner_user").prefetch_related("checks")
    return {
        "version": VERSION,
        "cluster": _cluster_state(cluster),
        "rows": {
            row.key: _row_state(row, _configured(cluster, row.checks.all()))
            for row in sorted(rows, key=lambda r: r.position)
        },
        **{section.key: section.export(cluster) for section in sections()},
    }


# --- parsing with line numbers -----------------------------------------------------------------

SCALAR_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null")}
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


@dataclass
class Document:
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    errors: Errors = field(default_factory=list)  # found while building; reported with the schema's

    def line(self, path: Path) -> int:
        """The line of a key, else of the nearest enclosing one that is there."""
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 0)


def dotted(path: Path) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".")


def _yaml_error(exc: yaml.YAMLError) -> tuple[int, str]:
    """At the line of the problem; where the construct it breaks began, in the message."""
    mark, context, context_mark = (getattr(exc, name, None) for name in ("problem_mark", "context", "context_mark"))
    message = f"not valid YAML: {getattr(exc, 'problem', None) or exc}"
    if context:
        message += f" ({context}" + (f" on line {context_mark.line + 1})" if context_mark else ")")
    return (mark.line + 1 if mark else 0), message


def _check_events(text: str) -> None:
    """Refuse, before anything is built: a second document, anchors and aliases (a few lines of
    aliases expand to billions of values), and nesting that would exhaust the recursion."""
    depth = documents = 0
    try:
        for event in yaml.parse(text, Loader=LOADER):
            line = event.start_mark.line + 1
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise ConfigError([(line, "one document per file: remove the second '---'")])
            elif isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise ConfigError([(line, "anchors and aliases (&name, *name) are not supported: write values out")])
            elif isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise ConfigError([(line, f"nested deeper than {MAX_DEPTH} levels")])
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_error(exc)]) from None


def parse_yaml(text: str) -> Document:
    """Plain values and the line of every key and list item. ConfigError for YAML that is
    malformed, too large or too deep; duplicate keys, unusual tags and secrets are left out of
    the values and listed in `errors`."""
    if len(text.encode(errors="surrogatepass")) > MAX_BYTES:
        raise ConfigError([(0, f"the document is larger than {MAX_BYTES:,} bytes")])
    if found := re.search(r"[\ud800-\udfff]", text):  # a str, not UTF-8: the parser could not even read it
        raise ConfigError([(text.count("\n", 0, found.start()) + 1, "not text: a lone surrogate (\\ud800-\\udfff)")])
    _check_events(text)
    loader = LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigError([(0, "the document is empty")])
        document = Document(None)
        document.data = _build(node, (), document.lines, document.errors, loader, text)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_error(exc)]) from None
    finally:
        loader.dispose()
    return document


def _text_problem(value: str, path: Path) -> str:
    """Why a string is refused, or ''. Never repeats the value: it may be a secret."""
    if found := UNSTORABLE.search(value):
        return f"contains the character {found.group()!r}, which stored text cannot hold"
    if PRIVATE_KEY.search(re.sub(r"\s+", "", value)):
        return f"holds a private key: {SECRET_MESSAGE}"
    if path[:2] == ("cluster", "actuator_commands") and _secret_argument(value):
        # The commands are stored and shown in clear: a worker gives them credentials itself.
        return "is an argument that carries a secret: secrets are never imported from YAML (the worker supplies them)"
    return ""


def _secret_argument(arg: str) -> bool:
    """An option named like a secret (--password, --api-token=...) or an assignment (TOKEN=...)."""
    name = arg.split("=", 1)[0] if "=" in arg else arg if arg.startswith("-") else ""
    return bool(SECRET_KEY.search(name))


def _build(node: yaml.Node, path: Path, lines: dict, errors: Errors, loader: yaml.SafeLoader, text: str) -> Any:
    """Refused values are left out (None), reported in `errors`: nothing refused reaches a query."""
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        value = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                errors.append((key_line, f"{dotted(path) or 'top level'}: keys must be names"))
                continue
            key = key_node.value
            if SECRET_KEY.search(key):
                errors.append((key_line, f"{dotted((*path, key))}: {SECRET_MESSAGE}"))
                continue
            if problem := _text_problem(key, ()):
                errors.append((key_line, f"{dotted(path) or 'top level'}: a key {problem}"))
                continue
            if key in value:
                first = lines[(*path, key)]
                errors.append((key_line, f"{dotted((*path, key))}: duplicate key (first on line {first})"))
                continue
            lines[(*path, key)] = key_line
            value[key] = _build(value_node, (*path, key), lines, errors, loader, text)
        return value
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            items.append(_build(item, (*path, index), lines, errors, loader, text))
        return items
    if node.tag not in SCALAR_TAGS and node.tag != TIMESTAMP_TAG:
        errors.append((line, f"{dotted(path)}: the tag {node.tag} is not supported"))
        return None
    kind = node.tag.rsplit(":", 1)[1]
    if kind == "int" and len(node.value.replace("_", "")) > MAX_INT_CHARS:
        errors.append((line, f"{dotted(path)}: a whole number beyond ±2**63"))
        return None
    try:  # an unquoted date is still text here
        value = node.value if node.tag == TIMESTAMP_TAG else loader.construct_object(node)
    except (ValueError, KeyError, IndexError, OverflowError, TypeError):  # e.g. !!int abc, !!bool maybe
        errors.append((line, f"{dotted(path)}: not a valid {kind} value"))
        return None
    if isinstance(value, int) and not isinstance(value, bool) and not -MAX_INT <= value < MAX_INT:
        errors.append((line, f"{dotted(path)}: a whole number beyond ±2**63"))
        return None
    if isinstance(value, str) and (found := PRIVATE_KEY.search(text, node.start_mark.index, node.end_mark.index)):
        errors.append((text.count("\n", 0, found.start()) + 1, f"{dotted(path)}: a private key: {SECRET_MESSAGE}"))
        return None
    if isinstance(value, str) and (problem := _text_problem(value, path)):
        errors.append((line, f"{dotted(path)}: {problem}"))
        return None
    return value


# --- validation --------------------------------------------------------------------------------

EXPECTED = {
    "text": "text",
    "int": "a whole number",
    "number": "a number",
    "bool": "true or false",
    "names": "a list of text",
    "mapping": "a mapping (key: value)",
    "list": "a list",
}
EMPTY = {"text": str, "mapping": dict, "list": list, "names": list}


def _typed(value: Any, kind: str) -> tuple[bool, Any]:
    """(acceptable, value) for one YAML value of a schema kind; a trailing '?' allows null."""
    if kind.endswith("?"):
        if value is None:
            return True, None
        kind = kind[:-1]
    if value is None and kind in EMPTY:  # `key:` with nothing after it
        return True, EMPTY[kind]()
    if kind == "text":
        return isinstance(value, str), value
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool), value
    if kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        return ok, float(value) if ok else value
    if kind == "bool":
        return isinstance(value, bool), value
    if kind == "names":
        return isinstance(value, list) and all(isinstance(item, str) for item in value), value
    if kind == "mapping":
        return isinstance(value, dict), value
    return isinstance(value, list), value


class _Checker:
    """Collects every error with its line, so one import reports all of them."""

    def __init__(self, document: Document):
        self.document = document
        self.errors: Errors = list(document.errors)

    def error(self, path: Path, message: str) -> None:
        self.errors.append((self.document.line(path), f"{dotted(path) or 'document'}: {message}"))

    def mapping(self, value: Any, path: Path, allowed: list[str]) -> dict:
        """The mapping's known keys; unknown ones are reported."""
        ok, value = _typed(value, "mapping")
        if not ok:
            self.error(path, f"expected {EXPECTED['mapping']}")
            return {}
        for key in value:
            if key not in allowed:
                self.error((*path, key), f"unknown key {key!r}; allowed here: {', '.join(allowed) or 'none'}")
        return {key: item for key, item in value.items() if key in allowed}

    def fields(self, raw: dict, path: Path, schema: dict[str, str], defaults: dict) -> dict:
        """Values by the schema, type-checked; a key left out takes its default."""
        values = {key: defaults[key] for key in schema}
        for key, kind in schema.items():
            if key not in raw:
                continue
            ok, value = _typed(raw[key], kind)
            if ok:
                values[key] = value
            else:
                self.error((*path, key), f"expected {EXPECTED[kind.rstrip('?')]}{' or null' if '?' in kind else ''}")
        return values

    def model(self, errors: dict[str, list[str]], path: Path, keys: dict[str, Path]) -> None:
        """A model's validation errors (`message_dict`), each at the line of its YAML key."""
        for name, messages in errors.items():
            where = path if name == NON_FIELD_ERRORS else (*path, *keys.get(name, (name,)))
            for message in messages:
                self.error(where, message)


CLUSTER_SCHEMA = {
    "name": "text",
    "environment": "text",
    "tags": "names",
    "team": "text?",
    "bootstrap_servers": "names",
    "security_protocol": "text",
    "sasl_mechanism": "text",
    "sasl_username": "text",
    "ssl_ca_pem": "text",
    "expected_brokers": "int?",
    "worker_queue": "text",
    "standby": "text?",
    "drills_allowed": "bool",
    "actuator": "text",
    "sandbox_control": "text",
    "actuator_commands": "mapping",
}
ROW_SCHEMA = {
    "owner": "text",
    "owner_contact": "text",
    "owner_user": "text?",
    "test": "text",
    "rollback_condition": "text",
    "guardrails": "mapping",
    "target": "text",
    "targets": "mapping",
    "checks": "mapping",
}
ROW_FIELDS = {"test": "test_description"} | {name: attname for name, (attname, _, _) in GUARDRAILS.items()}
ROW_ERROR_PATHS = {"test_description": ("test",)} | {a: ("guardrails", n) for n, (a, _, _) in GUARDRAILS.items()}
GUARDRAIL_SCHEMA = {
    name: ("number?" if isinstance(Row._meta.get_field(attname), models.FloatField) else "int?")
    for name, (attname, _, _) in GUARDRAILS.items()
}
CHECK_SCHEMA = {"interval_seconds": "int", "max_age_seconds": "int", "params": "mapping"}


def _user_named(username: str):
    return get_user_model()._default_manager.filter(**{get_user_model().USERNAME_FIELD: username}).first()


@dataclass
class _Desired:
    state: dict
    cluster: Cluster  # the candidate: unsaved, the YAML's values set (team possibly new)
    warnings: list[str]


def _clean(document: Document, target: Cluster | None, user, sasl_password: str) -> _Desired:
    """The YAML as the state it asks for, checked whole by the rules the pages use."""
    check = _Checker(document)
    top = check.mapping(document.data, (), ["version", "cluster", "rows", *(s.key for s in sections())])
    if "version" not in top:
        check.error((), f"version: required ({VERSION})")
    elif type(top["version"]) is not int or top["version"] != VERSION:
        check.error(("version",), f"unsupported version; this server reads version {VERSION}")
    if "cluster" not in top:
        check.error((), "cluster: required")
    warnings: list[str] = []
    cluster_state, candidate = _clean_cluster(check, top.get("cluster"), target, user, sasl_password, warnings)
    state = {
        "version": VERSION,
        "cluster": cluster_state,
        "rows": _clean_rows(check, top.get("rows"), target, candidate, roles.can(user, "manage_clusters")),
    }
    for section in sections():
        state[section.key] = _clean_section(check, section, top.get(section.key), candidate)
    if check.errors:
        raise ConfigError(check.errors)
    return _Desired(state, candidate, warnings)


def _clean_cluster(
    check: _Checker, raw: Any, target: Cluster | None, user, sasl_password: str, warnings: list[str]
) -> tuple[dict, Cluster]:
    path = ("cluster",)
    raw = check.mapping(raw, path, list(CLUSTER_SCHEMA))
    values = check.fields(raw, path, CLUSTER_SCHEMA, _cluster_state(Cluster()))
    values["tags"] = split_tags(", ".join(values["tags"]))
    values["bootstrap_servers"] = [entry.strip() for entry in values["bootstrap_servers"]]
    for index, entry in enumerate(values["bootstrap_servers"]):
        if "," in entry:  # stored joined by commas: it would come back as two entries, a change on every import
            check.error(
                (*path, "bootstrap_servers", index), "one host:port per entry: write each address as its own entry"
            )
    candidate = Cluster.objects.get(pk=target.pk) if target else Cluster()
    for name in CLUSTER_SCHEMA.keys() - {"tags", "bootstrap_servers", "team", "standby"}:
        setattr(candidate, name, values[name])
    candidate.tags = ", ".join(values["tags"])
    candidate.bootstrap_servers = ",".join(values["bootstrap_servers"])
    candidate.team = None
    if team_name := values["team"]:
        candidate.team = Team.objects.filter(name=team_name).first()
        if candidate.team is None:
            if len(team_name) > Team._meta.get_field("name").max_length:
                check.error((*path, "team"), "a team name has at most 100 characters")
            # Teams live in the admin site; creating one here keeps a rebuild browser-free.
            if roles.can(user, "manage_clusters"):  # the only role that may; others learn no team names
                warnings.append(f"team {team_name!r} does not exist: it will be created without members")
            candidate.team = Team(name=team_name)
    candidate.standby = None
    if standby_name := values["standby"]:
        # Among the clusters the user sees: another team's cluster is "not found", as on the pages.
        candidate.standby = Cluster.objects.filter(roles.visible(user), name=standby_name).first()
        if candidate.standby is None:
            check.error((*path, "standby"), f"no cluster named {standby_name!r} (import the standby first)")
    if sasl_password:  # typed again even when unchanged: it binds the password to a changed endpoint
        candidate.sasl_password = sasl_password
    try:
        candidate.full_clean()
    except ValidationError as exc:
        errors = exc.message_dict
        if "sasl_password" in errors:  # never in the file: say where it comes from
            errors["sasl_password"] = [f"{m} ({SECRET_MESSAGE}, or give it to the import command)"
                                       for m in errors["sasl_password"]]  # fmt: skip
        check.model(errors, path, {"sasl_password": ("security_protocol",)})
    if values["actuator_commands"] and candidate.actuator != Actuator.COMMAND:
        # The model checks them only for the command actuator; kept for later, they must still be templates.
        try:
            validate_command_templates(values["actuator_commands"])
        except ValueError as exc:
            check.error((*path, "actuator_commands"), str(exc))
    return values, candidate


def _clean_rows(check: _Checker, raw: Any, target: Cluster | None, candidate: Cluster, may_link: bool) -> dict:
    raw_rows = check.mapping(raw, ("rows",), RowKey.values)
    existing: dict[str, set[str]] = {key: set() for key in RowKey.values}
    owners = {}
    if target is not None:
        for row_key, kind in Check.objects.filter(row__scorecard__cluster=target).values_list("row__key", "kind"):
            existing[row_key].add(kind)
        owners = dict(Row.objects.filter(scorecard__cluster=target).values_list("key", "owner_user_id"))
    return {
        key: _clean_row(check, key, raw_rows.get(key), existing[key], owners.get(key), candidate, may_link)
        for key in RowKey.values
    }


def _clean_row(
    check: _Checker, key: str, raw: Any, existing: set[str], owner_id: int | None, candidate: Cluster, may_link: bool
) -> dict:
    path = ("rows", key)
    raw = check.mapping(raw, path, list(ROW_SCHEMA))
    defaults = _row_state(Row(key=key, **services.ROW_DEFAULTS[key]), [])
    values = check.fields(raw, path, ROW_SCHEMA, defaults)
    guardrails = check.mapping(values["guardrails"], (*path, "guardrails"), list(GUARDRAILS))
    values["guardrails"] = check.fields(guardrails, (*path, "guardrails"), GUARDRAIL_SCHEMA, defaults["guardrails"])
    values["targets"] = _clean_targets(check, key, values["targets"], (*path, "targets"))
    owner = None
    if values["owner_user"] is not None:
        owner = _user_named(values["owner_user"])
        # As on the row page: only active users are offered, but a deactivated owner may stay.
        # Said only to those who may link a login: to others the change is refused by role
        # alone, so a diff does not tell them which usernames exist.
        if may_link and (owner is None or not (owner.is_active or owner.pk == owner_id)):
            check.error((*path, "owner_user"), f"no active user named {values['owner_user']!r}")
    row = Row(key=key, owner_user=owner, **_row_fields(values))
    try:
        row.full_clean(exclude=["scorecard"], validate_unique=False)
    except ValidationError as exc:
        check.model(exc.message_dict, path, ROW_ERROR_PATHS)
    values["checks"] = _clean_checks(check, key, values["checks"], (*path, "checks"), existing, candidate)
    return values


def _row_fields(values: dict) -> dict:
    """Row model fields from a row's state, the owner's login apart."""
    fields = {ROW_FIELDS.get(name, name): values[name] for name in ROW_SCHEMA if name not in ("guardrails", "checks")}
    fields.pop("owner_user")
    return fields | {ROW_FIELDS[name]: value for name, value in values["guardrails"].items()}


def _clean_targets(check: _Checker, key: str, raw: dict, path: Path) -> dict:
    """Each number checked on its own, so every bad one is named with its line."""
    clean: dict[str, dict] = {}
    for scope, metrics in raw.items():
        try:
            validate_targets(key, {scope: {}})
            if not isinstance(metrics, dict):
                raise ValueError("expected a mapping of metric: number")
        except ValueError as exc:
            check.error((*path, scope), str(exc))
            continue
        for name, value in metrics.items():
            try:
                valid = validate_targets(key, {scope: {name: value}})[scope]
            except ValueError as exc:
                check.error((*path, scope, name), str(exc).removeprefix(f"{scope}.{name}: "))
            else:
                clean.setdefault(scope, {}).update(valid)
    return clean


def _check_kinds(key: str, existing: set[str], candidate: Cluster) -> list[str]:
    """The checks the row configures: the defaults, standby parity while there is a standby
    (see `_configured`), and any other it has already (a check is never removed)."""
    kinds = {kind for kind in services.DEFAULT_PROBES if PROBE_ROWS[kind] == key} | existing
    if candidate.standby is None:
        kinds.discard(ProbeKind.STANDBY_PARITY)
    elif PROBE_ROWS[ProbeKind.STANDBY_PARITY] == key:
        kinds.add(ProbeKind.STANDBY_PARITY)
    return sorted(kinds - {ProbeKind.DRILL_RESULTS}, key=_kind_order)


def _clean_checks(check: _Checker, key: str, raw: dict, path: Path, existing: set[str], candidate: Cluster) -> dict:
    kinds = _check_kinds(key, existing, candidate)
    misplaced = {
        ProbeKind.DRILL_RESULTS: "drill results are recorded by drills, not configured",
        **{kind: f"{kind} feeds the {row} row" for kind, row in PROBE_ROWS.items() if row != key},
    }
    if candidate.standby is None:
        misplaced.setdefault(ProbeKind.STANDBY_PARITY, "standby parity needs a standby (cluster.standby); "
                             "without one it is not configured: remove it")  # fmt: skip
    for kind in misplaced.keys() & raw.keys():
        check.error((*path, kind), misplaced[kind])
    raw = check.mapping({k: v for k, v in raw.items() if k not in misplaced}, path, kinds)
    checks = {}
    for kind in kinds:
        where = (*path, kind)
        values = check.fields(check.mapping(raw.get(kind), where, list(CHECK_SCHEMA)), where, CHECK_SCHEMA,
                              _check_state(kind, 900, 3600, catalog.defaults(kind)))  # fmt: skip
        try:
            Check(kind=kind, **values).full_clean(exclude=["row"], validate_unique=False)
        except ValidationError as exc:
            check.model(exc.message_dict, where, {})
        checks[kind] = _check_state(kind, values["interval_seconds"], values["max_age_seconds"],
                                    _clean_params(check, kind, values["params"], (*where, "params")))  # fmt: skip
    return checks


def _clean_params(check: _Checker, kind: str, raw: dict, path: Path) -> dict:
    """What the check page stores: the catalogue's parse, defaults filled in, nothing from
    the row's targets."""
    for name in catalog.FROM_ROW_TARGETS.keys() & raw.keys():
        check.error((*path, name), f"comes from the row's target {catalog.FROM_ROW_TARGETS[name]} (targets)")
    raw = {name: value for name, value in raw.items() if name not in catalog.FROM_ROW_TARGETS}
    try:
        parsed = vars(catalog.parse(kind, raw))
    except catalog.ParamError as exc:
        for name, message in exc.errors.items():
            check.error((*path, name), message)
        return raw
    return {n: v for n, v in parsed.items() if v is not None and n not in catalog.FROM_ROW_TARGETS}


def _clean_section(check: _Checker, section: Section, raw: Any, candidate: Cluster) -> list[dict]:
    ok, raw = _typed(raw, "list")
    if not ok:
        check.error((section.key,), f"expected {EXPECTED['list']}")
        return []
    if len(raw) > MAX_SECTION_ITEMS:
        check.error((section.key,), f"at most {MAX_SECTION_ITEMS} per cluster; this list has {len(raw)}")
        return []
    items = []
    for index, value in enumerate(raw):
        path = (section.key, index)
        item = check.mapping(value, path, list(section.fields))
        try:
            items.append(section.clean(item, candidate))
        except ValidationError as exc:  # "params.zone": at the line of that key
            check.model(exc.message_dict, path, {name: tuple(name.split(".")) for name in exc.message_dict})
    return items


# --- plan --------------------------------------------------------------------------------------


def _resolve(document: Document, cluster: Cluster | None, user, lock: bool) -> Cluster | None:
    """The cluster the YAML is for: the one given (whose name the YAML must carry), else the one
    it names, else None (a new cluster)."""
    data = document.data if isinstance(document.data, dict) else {}
    section = data.get("cluster") if isinstance(data.get("cluster"), dict) else {}
    name = section.get("name")
    line = document.line(("cluster", "name"))
    clusters = Cluster.objects.select_for_update() if lock else Cluster.objects.all()
    if cluster is not None:
        if name != cluster.name:
            message = f"cluster.name: this YAML is for {name!r}, not {cluster.name!r}"
            raise ConfigError([*document.errors, (line, message)])
        found = clusters.filter(pk=cluster.pk).first()
    elif not isinstance(name, str) or not name:
        return None
    else:
        found = clusters.filter(name=name).first()
        if found is None:
            return None
    if found is None or not Cluster.objects.filter(roles.visible(user), pk=found.pk).exists():
        message = f"cluster.name: {user.get_username()} may not see a cluster named {name!r}"
        raise ConfigError([*document.errors, (line, message)])
    if lock:
        list(Row.objects.select_for_update().filter(scorecard__cluster=found))
        list(Check.objects.select_for_update().filter(row__scorecard__cluster=found))
    return found


def _diff(before: Any, after: Any, path: Path = ()) -> list[tuple[Path, Any, Any]]:
    if isinstance(before, dict | None) and isinstance(after, dict | None) and (before or after):
        before, after = before or {}, after or {}
        keys = [*after, *(k for k in before if k not in after)]
        return [change for key in keys for change in _diff(before.get(key), after.get(key), (*path, key))]
    return [] if before == after else [(path, before, after)]


def _match(before: list, after: list) -> tuple[list, list[tuple[int, Any]]]:
    """Items only in `before`, and items only in `after` with their index: a multiset difference."""
    remaining, added = list(before), []
    for index, item in enumerate(after):
        if item in remaining:
            remaining.remove(item)
        else:
            added.append((index, item))
    return remaining, added


def _changes(document: Document, current: dict | None, desired: dict) -> list[Change]:
    changes = []
    for key in ("cluster", "rows"):
        for path, before, after in _diff((current or {}).get(key), desired[key], (key,)):
            changes.append(Change(dotted(path), before, after, document.line(path), path))
    for section in sections():
        removed, added = _match((current or {}).get(section.key, []), desired[section.key])
        line = document.line((section.key,))
        changes += [Change(section.key, item, None, line, (section.key,)) for item in removed]
        changes += [
            Change(f"{section.key}[{i}]", None, item, document.line((section.key, i)), (section.key, i))
            for i, item in added
        ]
    return changes


def _password_differs(target: Cluster | None, sasl_password: str) -> bool:
    if not sasl_password or target is None:
        return bool(sasl_password)
    try:
        return target.sasl_password != sasl_password
    except SecretUnreadable:
        return True


def _password_changes(
    target: Cluster | None, candidate: Cluster, sasl_password: str, document: Document
) -> list[Change]:
    """The password as a change, never its value: typed, or cleared because the cluster no
    longer uses SASL (the model forgets a password whose endpoint changed)."""
    before = "[set]" if target is not None and target.sasl_password_token else None
    if _password_differs(target, sasl_password):
        after = "[set]"
    elif before and not candidate.sasl_password_token:
        after = "(cleared)"
    else:
        return []
    return [Change("cluster.sasl_password", before, after, document.line(("cluster",)), ("cluster", "sasl_password"))]


def _denied(user, codename: str, action: str) -> str:
    """Why the user may not, or '' when they may (the message names the role it needs)."""
    try:
        roles.require(user, codename, action)
    except PermissionDenied as exc:
        return str(exc)
    return ""


def _refusals(document: Document, user, target: Cluster | None, changes: list[Change], desired: dict) -> Errors:
    """The changes the user's roles do not allow, by the rules of the pages that make them."""
    if target is None:
        denied = _denied(user, "manage_clusters", "register clusters")
        return [(document.line(("cluster",)), denied)] if denied else []
    rows = {row.key: row for row in Row.objects.filter(scorecard__cluster=target)}
    by_section = {section.key: section for section in sections()}
    refusals: dict[str, tuple[int, str]] = {}  # one per reason, at its first line

    def refuse(reason: str, line: int, message: str) -> None:
        if message:
            refusals.setdefault(reason, (line, message))

    for change in changes:
        parts = change.keys
        if parts[0] == "cluster":
            refuse("cluster", change.line, _denied(user, "manage_clusters", "change the cluster's settings"))
        elif parts[0] == "rows" and parts[2] == "checks":
            refuse("checks", change.line, _denied(user, "edit_checks", "edit checks"))
        elif parts[0] == "rows" and parts[2] == "owner_user":
            refuse("owner_user", change.line, _denied(user, "manage_clusters", "link a row's owner login"))
        elif parts[0] == "rows":
            row = rows[parts[1]]
            if not services.row_may_edit(user, row):
                message = f"{row.title} is owned by someone else: its owner or an administrator edits it"
                refuse(f"row {row.key}", change.line, f"{dotted(('rows', row.key))}: {message}")
        elif section := by_section.get(parts[0]):
            refuse(section.key, change.line, _denied(user, section.permission, section.action))
    if not may_loosen(user):
        for key, row in rows.items():
            if not services.row_may_edit(user, row):
                continue  # refused whole above, if changed at all
            wanted = _row_fields(desired["rows"][key])
            asked = {f: v for f, v in wanted.items() if f.startswith("rollback_") or f == "targets"}
            for name, message in loosenings(row, {f: v for f, v in asked.items() if getattr(row, f) != v}).items():
                where = ("targets",) if name.startswith("target_") else ("guardrails", _guardrail_name(name))
                refuse(f"loosen {key} {name}", document.line(("rows", key, *where)), message)
    return sorted(refusals.values())


def _guardrail_name(attname: str) -> str:
    return next(name for name, (field_name, _, _) in GUARDRAILS.items() if field_name == attname)


def _digest(text: str, current: dict | None) -> str:
    """Of the YAML and the state it was compared with: any change to either shows."""
    return hashlib.sha256(f"{text}\0{_dump(current) if current else ''}".encode()).hexdigest()


def _plan(
    *, text: str, user, cluster: Cluster | None, sasl_password: str, lock: bool
) -> tuple[Plan, _Desired, Cluster | None]:
    document = parse_yaml(text)
    target = _resolve(document, cluster, user, lock)
    desired = _clean(document, target, user, sasl_password)
    current = _state(target) if target else None
    changes = _changes(document, current, desired.state)
    changes += _password_changes(target, desired.cluster, sasl_password, document)
    plan = Plan(
        cluster_name=desired.state["cluster"]["name"],
        cluster_id=target.pk if target else None,
        new=target is None,
        changes=changes,
        refusals=_refusals(document, user, target, changes, desired.state),
        warnings=desired.warnings,
        digest=_digest(text, current),
    )
    return plan, desired, target


def config_plan(*, text: str, user: AbstractBaseUser, cluster: Cluster | None = None, sasl_password: str = "") -> Plan:
    """Validate the YAML and compare it with the cluster (given, else the one it names, else a
    new one): every change with its line, and what the user's roles refuse. ConfigError lists
    every problem of invalid YAML."""
    if sasl_password and not roles.can(user, "manage_clusters"):
        raise ConfigRefused([(0, _denied(user, "manage_clusters", "set a cluster's credentials"))])
    try:
        with transaction.atomic():  # a savepoint: a failed query must not break the caller's transaction
            return _plan(text=text, user=user, cluster=cluster, sasl_password=sasl_password, lock=False)[0]
    except (DatabaseError, ValueError) as exc:
        raise _unexpected("checked") from exc


def config_apply(
    *,
    text: str,
    user: AbstractBaseUser,
    cluster: Cluster | None = None,
    expected_digest: str | None = None,
    sasl_password: str = "",
) -> Plan:
    """Apply the YAML all or nothing, through the services the pages use (each change gets its
    usual audit event) and one `config.import` event. Refused when the plan has refusals, or
    when `expected_digest` is not the digest of the diff the user saw."""
    if sasl_password and not roles.can(user, "manage_clusters"):
        raise ConfigRefused([(0, _denied(user, "manage_clusters", "set a cluster's credentials"))])
    try:
        with transaction.atomic(), audit.acting_as(user.get_username()):
            # Locked before planning, so the plan is made on what will be changed.
            plan, desired, target = _plan(text=text, user=user, cluster=cluster, sasl_password=sasl_password,
                                          lock=True)  # fmt: skip
            if expected_digest is not None and plan.digest != expected_digest:
                raise ConfigStale([(0, "the scorecard changed since the diff was shown: review the new diff")])
            if plan.refusals:
                raise ConfigRefused(plan.refusals)
            if not plan.changes:
                return plan
            try:
                applied = _apply(desired, target, user, sasl_password)
            except (ValidationError, PermissionDenied) as exc:  # a rule the plan did not foresee
                messages = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
                raise ConfigError([(0, message) for message in messages]) from exc
            audit.record(
                "config.import",
                applied,
                after={"changes": len(plan.changes), "digest": plan.digest},
                comment=f"{len(plan.changes)} changes imported from YAML",
            )
    except IntegrityError as exc:
        # A new cluster or team is not locked (it has no row yet): an import or a page that
        # created the same name meanwhile wins, and this one is rolled back whole.
        message = "a cluster or team of the same name was created meanwhile: nothing was applied; review the new diff"
        raise ConfigError([(0, message)]) from exc
    except (DatabaseError, ValueError) as exc:
        raise _unexpected("applied") from exc
    plan.cluster_id = applied.pk
    return plan


def _unexpected(what: str) -> ConfigError:
    """A backstop: a value the validation let through and the database refused. Logged for a
    fix here; the user gets a refusal, never an error page, and nothing was changed."""
    log.exception("a YAML import could not be %s", what)
    return ConfigError(
        [(0, f"the YAML could not be {what}: a value was refused by the database (logged); nothing was changed")]
    )


def _apply(desired: _Desired, target: Cluster | None, user, sasl_password: str) -> Cluster:
    # The candidate was validated with the YAML's values (and a typed password): it is what is saved.
    state, cluster = desired.state, desired.cluster
    if cluster.team is not None and cluster.team.pk is None:
        cluster.team.save()
        audit.record("team.create", cluster.team, after={"name": cluster.team.name})
    if target is None:
        services.cluster_register(cluster=cluster)
    elif _cluster_state(target) != state["cluster"] or _password_differs(target, sasl_password):
        services.cluster_update(cluster=cluster)
    for row in Row.objects.filter(scorecard__cluster=cluster):
        wanted = state["rows"][row.key]
        owner = _user_named(wanted["owner_user"]) if wanted["owner_user"] else None
        fields = {name: value for name, value in _row_fields(wanted).items() if getattr(row, name) != value}
        if row.owner_user_id != (owner.pk if owner else None):
            fields["owner_user"] = owner
        if fields:
            services.row_update(row=row, may_loosen=may_loosen(user), **fields)
    checks = Check.objects.filter(row__scorecard__cluster=cluster).exclude(kind=ProbeKind.DRILL_RESULTS)
    for check in checks.select_related("row"):
        wanted = state["rows"][check.row.key]["checks"].get(check.kind)  # None: not configured (`_configured`)
        if wanted and _check_state(check.kind, check.interval_seconds, check.max_age_seconds, check.params) != wanted:
            services.check_update(check=check, **wanted)
    for section in sections():
        removed, added = _match(section.export(cluster), state[section.key])
        if removed or added:
            section.apply(cluster=cluster, removed=removed, added=[item for _, item in added],
                          by=user.get_username())  # fmt: skip
    return cluster
