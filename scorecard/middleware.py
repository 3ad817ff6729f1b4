"""Who is acting: the audit trail names the logged-in user of the request being served."""

from scorecard import audit


class AuditActorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        name = user.get_username() if user is not None and user.is_authenticated else ""
        with audit.acting_as(name or "anonymous"):
            return self.get_response(request)
