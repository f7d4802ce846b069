"""Provider webhooks: /hooks/<kind>/<account uuid>/ (see campaigns/webhooks.py)."""

from django.urls import path

from campaigns import webhooks

urlpatterns = [path("<slug:kind>/<uuid:account_uuid>/", webhooks.provider_webhook, name="provider-webhook")]
