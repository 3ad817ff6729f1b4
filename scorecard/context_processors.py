from django.conf import settings


def mode(request):
    """Expose the run mode so the footer can say when this is a demo or test instance."""
    return {"run_mode": settings.MODE}
