"""Project-level views: the OpenAPI schema (generated once per process), a health check, the two sign-in views (the
API's token endpoint, the admin's login page) with sign-in throttling, and Django's 400 and 500 answers, in JSON
under /api/."""

import logging
import threading
from collections.abc import Mapping

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import NON_FIELD_ERRORS, DisallowedHost
from django.db import connection
from django.forms.utils import ErrorDict
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.views import defaults
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import APIException, NotAuthenticated, Throttled
from rest_framework.response import Response
from rest_framework.settings import api_settings

from campaigns.ratelimit import redis_client
from campaigns.selectors import background_status
from config.api import DetailSerializer, KnownFieldsMixin
from config.filters import QueryParametersMixin
from config.login_throttle import (
    UNAVAILABLE,
    UNAVAILABLE_WAIT,
    SignInUnavailable,
    login_attempt,
    login_refusal,
    login_succeeded,
    login_wait,
)
from config.middleware import API_PREFIX
from config.schema import FieldErrorsSerializer

logger = logging.getLogger(__name__)


class SchemaView(SpectacularAPIView):
    """The schema, for a signed-in user (SERVE_PERMISSIONS). drf-spectacular's generation is not thread-safe
    (tfranzel/drf-spectacular#1123): concurrent first requests on a threaded server fail. The schema never changes at
    run time, so it is built once per process, under a lock, per language and version."""

    _lock = threading.Lock()
    _schemas: dict[tuple, Response] = {}

    def _get_schema_response(self, request):
        key = (request.GET.get("lang"), self.api_version or request.version, self.serve_public)
        with self._lock:
            if key not in self._schemas:
                self._schemas[key] = super()._get_schema_response(request)
        cached = self._schemas[key]
        return Response(data=cached.data, headers={"Content-Disposition": cached["Content-Disposition"]})

    def handle_exception(self, exc):
        """An error (no token: a 401) in JSON as every other error, not in the schema's YAML."""
        response = super().handle_exception(exc)
        answer = JsonResponse(response.data, status=response.status_code)
        for header in ("WWW-Authenticate", "Retry-After"):
            if header in response:
                answer[header] = response[header]
        return answer


class SwaggerView(SpectacularSwaggerView):
    """The Swagger UI, for a signed-in user as the schema it shows (SERVE_PERMISSIONS); a browser without a session
    is sent to the admin's login page and back, rather than shown a 401 in JSON."""

    def handle_exception(self, exc):
        if isinstance(exc, NotAuthenticated):
            return redirect_to_login(self.request.get_full_path(), login_url="admin:login")
        return super().handle_exception(exc)


def healthz(request):
    """200 when the database and Redis answer (for load balancers and start-up probes). Anyone may ask, so a failure
    is named, not described: the error (hosts, ports, user names) goes to the log, not to the caller.

    `?background=1` (for monitoring, never for a load balancer: a stopped worker is no reason to pull a web server)
    also asks whether a worker and beat run, and answers 503 when they have not for BACKGROUND_STALE_AFTER."""
    problems = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        logger.exception("Health check: the database does not answer.")
        problems["database"] = "unavailable"
    try:
        redis_client().ping()
    except Exception:
        logger.exception("Health check: Redis does not answer.")
        problems["redis"] = "unavailable"
    answer = {"ok": not problems, **problems}
    if request.GET.get("background") == "1":
        background = background_status()
        answer["ok"] = answer["ok"] and not background.alarm
        answer.update(
            background=background.state,
            worker_seconds_ago=None if background.worker_age is None else round(background.worker_age),
            beat_seconds_ago=None if background.beat_age is None else round(background.beat_age),
        )
    return JsonResponse(answer, status=200 if answer["ok"] else 503)


class TokenRequestSerializer(KnownFieldsMixin, AuthTokenSerializer):
    # DRF's, refusing a field it does not have as every other body does (`{"user": …}` for username was ignored, and
    # answered "This field is required." on username). (A comment: a docstring would be the schema's description.)
    pass


class TokenView(QueryParametersMixin, ObtainAuthToken):
    """`POST /api/v1/auth/token/` (DRF's): a 429 with Retry-After once the client or the username failed too often."""

    serializer_class = TokenRequestSerializer
    # JSON, as every other body (DRF's view also read forms, which API.md says are a 415 everywhere but an import).
    parser_classes = api_settings.DEFAULT_PARSER_CLASSES

    @extend_schema(
        request=AuthTokenSerializer,
        responses={
            200: AuthTokenSerializer,
            400: OpenApiResponse(
                FieldErrorsSerializer,
                description='A field missing, or a wrong username or password (`{"non_field_errors": ["Unable to '
                'log in with provided credentials."]}`).',
            ),
            429: OpenApiResponse(
                DetailSerializer,
                description="Too many failed sign-ins from this address or for this username (LOGIN_FAILURES_*): "
                "try again after Retry-After seconds.",
            ),
            503: OpenApiResponse(
                DetailSerializer,
                description="Sign-in attempts cannot be counted (the cache, Redis, does not answer): none is let "
                "through uncounted. Try again after Retry-After seconds.",
            ),
        },
        parameters=[
            OpenApiParameter(
                "Retry-After", int, OpenApiParameter.HEADER, response=[429, 503], description="Seconds to wait."
            )
        ],
    )
    def post(self, request, *args, **kwargs):
        self.get_serializer().unknown_fields_check(request.data)  # before counting: no password is tried
        data = request.data if isinstance(request.data, Mapping) else {}
        username, password = str(data.get("username") or ""), data.get("password")
        try:
            counted, wait = _attempt(request, username, password)
        except SignInUnavailable as exc:
            raise SignInUnavailableError(str(exc)) from None
        if wait is not None:
            raise SignInThrottled(wait)
        response = super().post(request, *args, **kwargs)  # a wrong password raises: its count stays, a failure
        login_succeeded(counted)
        return response


def admin_login(request, extra_context=None):
    """The admin's login page, refusing a sign-in with a 429 once the client or the username failed too often."""
    if request.method != "POST":
        return admin.site.login(request, extra_context)
    username, password = request.POST.get("username", ""), request.POST.get("password")
    try:
        counted, wait = _attempt(request, username, password)
    except SignInUnavailable:
        return _login_refused(request, f"{UNAVAILABLE} Try again in a minute.", UNAVAILABLE_WAIT, status=503)
    if wait is not None:
        return _login_refused(request, login_refusal(wait), wait)
    response = admin.site.login(request, extra_context)
    if response.status_code != 200:  # signed in (the form again, with its error, is a failure: its count stays)
        login_succeeded(counted)
    return response


def _attempt(request, username: str, password) -> tuple[list[str], int | None]:
    """login_attempt for a guess; a request missing a field is no guess: not counted, but held back too."""
    counted, wait = login_attempt(request=request, username=username) if username and password else ([], None)
    if wait is None and not counted:
        wait = login_wait(request=request, username=username)
    return counted, wait


class SignInThrottled(Throttled):
    """A 429 in the admin's words ("… Try again in 9 minutes."), where DRF's added "Expected available in 523
    seconds."; Retry-After still gives the seconds (DRF's handler writes `wait` there)."""

    def __init__(self, wait: int):
        super().__init__(detail=login_refusal(wait))
        self.wait = wait


class SignInUnavailableError(APIException):
    status_code = 503
    default_detail = UNAVAILABLE
    wait = UNAVAILABLE_WAIT  # DRF's handler writes it as Retry-After


def _login_refused(request, text: str, wait: int, status: int = 429) -> TemplateResponse:
    """The admin's login page again, its form saying why (429 or 503, Retry-After), the username kept."""
    form = AdminAuthenticationForm(request, initial={"username": request.POST.get("username", "")})  # not tried
    form._errors = ErrorDict({NON_FIELD_ERRORS: form.error_class([text], error_class="nonfield")})
    context = {
        **admin.site.each_context(request),
        "title": "Log in",
        "form": form,
        "app_path": request.get_full_path(),
        REDIRECT_FIELD_NAME: request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME, ""),
    }
    return TemplateResponse(request, "admin/login.html", context, status=status, headers={"Retry-After": str(wait)})


class AdminAutocompleteView(AutocompleteJsonView):
    """The admin's autocomplete (the search box of a relation's select), searching for the term without NUL
    characters: PostgreSQL cannot take one in a query, and `?term=%00` made every autocomplete a 500 (the lists'
    own search refuses it through their form)."""

    def process_request(self, request):
        term, model_admin, source_field, to_field_name = super().process_request(request)
        return term.replace("\x00", ""), model_admin, source_field, to_field_name


def admin_autocomplete(request):
    return admin.site.admin_view(AdminAutocompleteView.as_view(admin_site=admin.site))(request)


# Django's own error answers (config/urls.py's handler400 and handler500), for what goes wrong before or outside the
# API's views: under /api/ an API client gets `{"detail": "…"}` as from every other error, not Django's HTML page.
# Django calls them only with DEBUG off (DEBUG shows its debugging page; under /api/, config.middleware answers
# server_error in its place), and after logging the error (django.request, django.security.*) with its traceback,
# which the answer leaves out.


def bad_request(request, exception):
    """400: a Host header not in ALLOWED_HOSTS, or a request Django refused before any view read it."""
    if not request.path_info.startswith(API_PREFIX):
        return defaults.bad_request(request, exception)
    if isinstance(exception, DisallowedHost):
        detail = "The Host header names no host this server answers to (its ALLOWED_HOSTS)."
    else:
        detail = "Bad request."
    return JsonResponse({"detail": detail}, status=400)


def server_error(request):
    """500: an error Herald did not expect; its traceback is in the server's log, not in the answer."""
    if not request.path_info.startswith(API_PREFIX):
        return defaults.server_error(request)
    return JsonResponse(
        {"detail": "Server error: Herald could not answer this request. The error is in its log."}, status=500
    )
