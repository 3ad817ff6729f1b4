from django.conf import settings


def mode(request):
    """Expose the run mode so the footer can say when this is a demo or test instance, and the
    user's roles for the header."""
    user = getattr(request, "user", None)
    roles = []
    if user is not None and user.is_authenticated:
        from scorecard.roles import user_roles

        roles = user_roles(user)
    # Secure cookies are not sent back over plain HTTP: logging in would fail with a CSRF error.
    cookies_need_https = settings.SESSION_COOKIE_SECURE and not request.is_secure()
    return {"run_mode": settings.MODE, "user_roles": roles, "cookies_need_https": cookies_need_https}
