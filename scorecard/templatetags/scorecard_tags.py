import json

from django import template
from django.utils.html import format_html

from scorecard.models import Status

register = template.Library()


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@register.simple_tag
def status_badge(status):
    """The status as a coloured badge that also says it in words (colour is never the only signal)."""
    label = Status(status).label if status in Status.values else str(status)
    return format_html('<span class="status status-{}">{}</span>', str(status).lower(), label)


@register.filter
def get_item(mapping: dict, key):
    return mapping.get(key, [])


@register.filter
def row_guardrail_text(row) -> str:
    """The row's machine-enforced rollback parts, in words."""
    from scorecard.targets import guardrail_words

    return ", ".join(guardrail_words(row))


@register.filter
def row_target_text(row) -> str:
    """The row's typed targets, with the product defaults it falls back on."""
    from scorecard.targets import METRICS, row_metrics, target_for

    parts = []
    for name in row_metrics(row.key):
        value, source = target_for(row, name)
        if value is not None:
            default = "" if source.endswith("row") else " (product default)"
            parts.append(f"{METRICS[name].label} <= {value:g} {METRICS[name].unit}{default}")
    overrides = [
        f"{scope}.{n} <= {v:g}"
        for scope, values in row.targets.items()
        if scope != "default"
        for n, v in values.items()
    ]
    if overrides:
        parts.append("per scenario: " + ", ".join(overrides))
    return "; ".join(parts) or "no typed target"


@register.filter
def report_json(value, limit: int = 4000) -> str:
    """Measurements for the audit PDF: indented, cut at `limit` characters."""
    text = json.dumps(value, indent=1, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit] + "\n… (cut: see the evidence in the dashboard)"
