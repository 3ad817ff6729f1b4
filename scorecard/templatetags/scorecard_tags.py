import json

from django import template

register = template.Library()


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@register.inclusion_tag("scorecard/_status.html")
def status_badge(status):
    return {"status": status}


@register.filter
def get_item(mapping: dict, key):
    return mapping.get(key, [])
