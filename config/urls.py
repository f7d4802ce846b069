"""Top-level URLs: admin, REST API v1, OpenAPI schema and Swagger UI, provider webhooks."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from config.views import SchemaView, SwaggerView, admin_autocomplete, admin_login, healthz

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/login/", admin_login),  # admin.site.login, with sign-in throttling
    path("admin/autocomplete/", admin_autocomplete),  # admin.site's, with a term PostgreSQL can take
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("hooks/", include("campaigns.webhook_urls")),
    path("healthz", healthz, name="healthz"),
]

# Under /api/, in JSON as the API's other errors (config/views.py); elsewhere Django's pages.
handler400 = "config.views.bad_request"
handler500 = "config.views.server_error"
