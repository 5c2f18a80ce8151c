"""Serving the admin's static files from the ASGI app: daphne serves no files itself."""

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.exceptions import SuspiciousFileOperation
from django.http import Http404, HttpRequest, HttpResponseBase


class StaticFilesHandler(ASGIStaticFilesHandler):
    """Django's ASGI static-files handler, answering 404 to a path outside the static dirs,
    with the security headers that the middleware gives every other response.

    The stock handler lets SuspiciousFileOperation (a `..` path) escape as a 500 with a
    logged traceback, and serves files without going through the middleware at all, so
    without `nosniff`: a browser could take an uploaded-looking file for a script.
    """

    def serve(self, request: HttpRequest) -> HttpResponseBase:
        """Serve the file, or raise Http404 for a path that leaves the static dirs."""
        try:
            response = super().serve(request)
        except SuspiciousFileOperation:
            raise Http404("no such static file") from None
        response["X-Content-Type-Options"] = "nosniff"
        response["Referrer-Policy"] = settings.SECURE_REFERRER_POLICY
        return response
