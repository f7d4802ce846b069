"""Django's CommonMiddleware, with the REST API's paths answered in JSON, as every other API answer is.

- A path of the API without its trailing slash (`POST /api/v1/contacts`) is a 308 to the path with it, which a
  client follows with the same method and body, and whose JSON says so. Django's 301 made a client that follows
  redirects (`curl -L`, most libraries) send a POST again as a GET: the list answered 200 and nothing was created.
  With DEBUG (`make run`) a POST, PUT, PATCH or DELETE there was a 500 (Django's RuntimeError about APPEND_SLASH).
- A path under /api/ that is none (`/api/v1/contact/`) is `{"detail": "Not found."}`, not the HTML 404 page.
- An error no view handled under /api/ is the JSON 500 of config.urls' handler500 with DEBUG on too (`make run`):
  Django answers handler500 only with DEBUG off, and its debugging page (HTML, or the traceback as text) otherwise.
  Django has logged the error with its traceback (django.request) either way.
"""

from django.http import JsonResponse
from django.middleware.common import CommonMiddleware as DjangoCommonMiddleware
from django.urls import get_resolver, get_urlconf
from django.utils.encoding import iri_to_uri
from django.utils.http import escape_leading_slashes

API_PREFIX = "/api/"


class CommonMiddleware(DjangoCommonMiddleware):
    def process_response(self, request, response):
        if (
            response.status_code == 404
            and request.path_info.startswith(API_PREFIX)
            and not response.get("Content-Type", "").startswith("application/json")  # not the API's own 404
        ):
            if self.should_redirect_with_slash(request):
                path = escape_leading_slashes(request.get_full_path(force_append_slash=True))
                response = JsonResponse(
                    {"detail": f"The API's paths end with a slash: {request.path}/ (this answer redirects there)."},
                    status=308,
                )
                response["Location"] = iri_to_uri(path)
            else:
                response = JsonResponse({"detail": "Not found."}, status=404)
        elif (
            response.status_code == 500
            and request.path_info.startswith(API_PREFIX)
            and not response.get("Content-Type", "").startswith("application/json")  # DEBUG's page, not handler500's
        ):
            logged = getattr(response, "_has_been_logged", False)  # django.utils.log.log_response's mark
            response = get_resolver(get_urlconf()).resolve_error_handler(500)(request)
            response._has_been_logged = logged  # once, with its traceback, not again as a bare "Internal Server Error"
        return super().process_response(request, response)
