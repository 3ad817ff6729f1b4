"""Request body limits, enforced before anything reads the body."""

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpResponse

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class RequestBodyLimitMiddleware:
    """Refuse a body larger than the limits with 413 and a sentence, from its Content-Length,
    before a byte of it is read: DATA_UPLOAD_MAX_MEMORY_SIZE for form posts and JSON or YAML
    bodies (which are read into memory whole), REQUEST_BODY_MAX_BYTES for multipart posts
    (whose uploaded file Django streams to disk and never counts). Without the first, Django
    answers a bare 400 page; without the second, an upload is limited by nothing."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return self._refuse(request, 400, "The Content-Length header is not a number.")
        multipart = request.META.get("CONTENT_TYPE", "").startswith("multipart/")
        limit = settings.REQUEST_BODY_MAX_BYTES if multipart else settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if length > limit:
            return self._refuse(request, 413, f"The request body is larger than the {limit:,} bytes accepted.")
        if request.method == "POST" and request.content_type in FORM_TYPES:
            # Parsed here, before CSRF's check reads it: what Django refuses while parsing is
            # answered with a sentence, not a bare 400 page (the parsed form is kept).
            try:
                request.POST  # noqa: B018
            except (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent) as exc:
                return self.process_exception(request, exc)
        return self.get_response(request)

    def process_exception(self, request, exception):
        """What Django finds while parsing a form post (a bare 400 page otherwise)."""
        if isinstance(exception, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return self._refuse(request, 413, f"The form's fields are larger than the {limit:,} bytes accepted.")
        if isinstance(exception, TooManyFieldsSent | TooManyFilesSent):
            return self._refuse(request, 400, "The form has more fields or files than any page here sends.")
        return None

    @staticmethod
    def _refuse(request, status: int, message: str) -> HttpResponse:
        if request.path.startswith("/api/"):
            return HttpResponse(json.dumps({"detail": message}), status=status, content_type="application/json")
        return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
