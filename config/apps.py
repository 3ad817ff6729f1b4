from django.contrib.staticfiles.apps import StaticFilesConfig


class StaticFiles(StaticFilesConfig):
    """Static files without django-ninja's ReDoc bundle (4 MB with its map): the API reference
    is its Swagger UI page."""

    ignore_patterns = [*StaticFilesConfig.ignore_patterns, "redoc.standalone.js*"]
