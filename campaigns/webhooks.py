"""Provider webhooks at /hooks/<kind>/<account uuid>/: authenticate, store, answer fast.

The vendor's backend authenticates and parses the call; the reports are stored (one COPY, and queued)
and applied in batches by a task, so the answer goes back in milliseconds (Octopush wants it
within a second, MOBtexting within three).
"""

import logging

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from campaigns.services.reports import status_events_receive
from providers.backends import BACKENDS, get_backend
from providers.backends.base import AuthenticationFailed, BackendError
from providers.selectors import provider_account_for_webhook

logger = logging.getLogger("herald.webhooks")


@csrf_exempt
def provider_webhook(request, kind: str, account_uuid):
    account = provider_account_for_webhook(kind=kind, uuid=account_uuid) if kind in BACKENDS else None
    if account is None:
        return JsonResponse({"detail": "No such provider account."}, status=404)
    try:
        parsed = get_backend(kind).parse_callback(
            account.as_backend_account(),
            method=request.method,
            headers={k.lower(): v for k, v in request.headers.items()},
            query=request.GET.dict(),
            body=request.body,
        )
    except AuthenticationFailed as exc:
        logger.warning("rejected a forged %s callback for %s: %s", kind, account.name, exc)
        return JsonResponse({"detail": "Not authentic."}, status=403)
    except BackendError as exc:
        logger.warning("unreadable %s callback for %s: %s", kind, account.name, exc)
        return JsonResponse({"detail": exc.message}, status=400)
    status_events_receive(account=account, updates=parsed.updates)
    response = parsed.response
    return HttpResponse(response.body, status=response.status, content_type=response.content_type)
