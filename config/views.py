"""Project-level views: the OpenAPI schema (generated once per process) and a health check."""

import threading

from django.db import connection
from django.http import JsonResponse
from drf_spectacular.views import SpectacularAPIView
from rest_framework.response import Response

from campaigns.ratelimit import redis_client


class SchemaView(SpectacularAPIView):
    """drf-spectacular's generation is not thread-safe (tfranzel/drf-spectacular#1123): concurrent first
    requests on a threaded server fail. The schema never changes at run time, so it is built once per
    process, under a lock, per language and version."""

    _lock = threading.Lock()
    _schemas: dict[tuple, Response] = {}

    def _get_schema_response(self, request):
        key = (request.GET.get("lang"), self.api_version or request.version, self.serve_public)
        with self._lock:
            if key not in self._schemas:
                self._schemas[key] = super()._get_schema_response(request)
        cached = self._schemas[key]
        return Response(data=cached.data, headers={"Content-Disposition": cached["Content-Disposition"]})


def healthz(request):
    """200 when the database and Redis answer (for load balancers and start-up probes)."""
    problems = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        problems["database"] = str(exc)
    try:
        redis_client().ping()
    except Exception as exc:
        problems["redis"] = str(exc)
    return JsonResponse({"ok": not problems, **problems}, status=503 if problems else 200)
