"""The OpenAPI schema's view of errors: every operation documents the error answers it can give, in the shapes
config.api.exception_handler gives them, so that a client generated from the schema knows them too.

- 400 `FieldErrors` (`{"phone": ["Enter a valid phone number…"]}`, `non_field_errors` for the rest): a body that
  does not validate or is not JSON, an action the object's state refuses, a bad filter or ordering on a list, a
  query parameter the operation does not take (on every operation).
- 401 and 403 `Detail`: no or a bad token; a token without the model permission.
- 404 `Detail`: no such object (or not a number), a page or cursor past the end.
- 415 `Detail`: a body in a Content-Type the operation does not take (JSON; multipart for an import's file).
- 409 and 429 are declared where they happen (a delete refused while the object is used; the token endpoint).
"""

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from config.api import DetailSerializer


class FieldErrorsSerializer(serializers.Serializer):
    """A validation error: each field named, with its messages (its schema is FieldErrorsSchema's)."""


class FieldErrorsSchema(OpenApiSerializerExtension):
    target_class = FieldErrorsSerializer

    def get_name(self, auto_schema, direction):
        return "FieldErrors"

    def map_serializer(self, auto_schema, direction):
        return {
            "type": "object",
            "description": "Each field (a body field, or the query parameter) that is wrong, with what is wrong "
            "with it; `non_field_errors` for what concerns no single field (a body that is not JSON, or not an "
            "object). A list or object field whose items are wrong names them in the same shape, by position or "
            'key: `{"contacts": {"1": ["A valid integer is required."]}}` (the second id).',
            "additionalProperties": {
                "oneOf": [
                    {"type": "array", "items": {"type": "string"}},
                    {"$ref": "#/components/schemas/FieldErrors"},
                ]
            },
            "example": {"phone": ["Enter a valid phone number (E.164 such as +919812345678, or a national number)."]},
        }


# A 403 that may name fields (an import's permissions, by what it would write) or not (no permission at all).
DETAIL_OR_FIELD_ERRORS = PolymorphicProxySerializer(
    component_name="DetailOrFieldErrors",
    serializers=[DetailSerializer, FieldErrorsSerializer],
    resource_type_field_name=None,
)

ERRORS = {
    "400": OpenApiResponse(FieldErrorsSerializer, description="The request is wrong; the answer names the field."),
    "401": OpenApiResponse(
        DetailSerializer, description="No credentials, or a bad token: send `Authorization: Token <key>`."
    ),
    "403": OpenApiResponse(DetailSerializer, description="The token's user lacks the permission this needs."),
    "404": OpenApiResponse(DetailSerializer, description="No such object, or a page (cursor) past the end."),
    "415": OpenApiResponse(DetailSerializer, description="A body in a Content-Type this operation does not take."),
}


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema, with the error answers of the module docstring added to each operation
    (an answer an operation declares itself, with @extend_schema, is kept)."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code not in responses:
                responses[code] = self._get_response_for_code(ERRORS[code], code, direction=direction)
        return dict(sorted(responses.items()))

    def _map_basic_serializer(self, serializer, direction):
        """In an answer every field the serializer reads is there, whatever the request may leave out: `required`
        lists them all. drf-spectacular listed only those a request must give (and the read-only ones), so a client
        generated from the schema typed a contact's `email` or `tags`, or a campaign's `text`, as possibly absent."""
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "response" and schema.get("properties"):
            schema["required"] = sorted(
                name for name, field in schema["properties"].items() if not field.get("writeOnly")
            )
        return schema

    def _error_codes(self) -> list[str]:
        codes = ["400"]  # every operation refuses a query parameter it does not take (config.filters)
        listing = self.method == "GET" and self._is_list_view()
        if not all(isinstance(permission, AllowAny) for permission in self.view.get_permissions()):
            codes += ["401", "403"]
        if "{" in self.path or (listing and self._get_paginator() is not None):
            codes.append("404")
        if self.method in ("POST", "PUT", "PATCH"):
            codes.append("415")
        return codes


def refuses_delete_while_used(viewset):
    """For a viewset whose objects others use (a campaign's sender, a segment's tag): its DELETE documents the 409
    that names them (config.api.exception_handler)."""
    conflict = OpenApiResponse(
        DetailSerializer, description="Still in use: the answer names what uses it (delete or change those first)."
    )
    return extend_schema_view(destroy=extend_schema(responses={204: None, 409: conflict}))(viewset)
