from django.conf import settings


def mode(request):
    """Expose the run mode so the footer can say when this is a demo or test instance, and the
    user's roles for the header."""
    user = getattr(request, "user", None)
    roles = []
    if user is not None and user.is_authenticated:
        from scorecard.roles import user_roles

        roles = user_roles(user)
    return {"run_mode": settings.MODE, "user_roles": roles}
