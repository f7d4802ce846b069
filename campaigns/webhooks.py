"""Provider webhooks (placeholder until the engine lands)."""

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def provider_webhook(request, kind, account_uuid):
    return HttpResponse(status=501)
