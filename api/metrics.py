"""Prometheus metrics at /metrics (being written)."""

from django.http import HttpResponse


def metrics(request):
    return HttpResponse(status=503)
