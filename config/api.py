"""Project-wide REST API pieces: the JSON error format.

Every error is JSON. Validation errors name the field: ``{"phone": ["Enter a valid phone
number."]}``; errors that concern no single field use ``non_field_errors``.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def validation_error_detail(error: DjangoValidationError) -> dict:
    """Turn a Django ValidationError into DRF's field -> [messages] shape."""
    if hasattr(error, "error_dict"):
        return {
            ("non_field_errors" if field == "__all__" else field): [str(m) for e in errors for m in e.messages]
            for field, errors in error.error_dict.items()
        }
    return {"non_field_errors": list(error.messages)}


def exception_handler(exc, context):
    """DRF's handler, plus Django's ValidationError (raised by services) rendered as a 400 naming the field."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(validation_error_detail(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, list):
        response.data = {"non_field_errors": response.data}
    return response


def not_implemented(detail: str) -> Response:
    return Response({"detail": detail}, status=501)
