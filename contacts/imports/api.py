"""REST API for imports: /api/v1/imports/ (multipart upload, list, detail), cancel, and the error report.

    curl -H "Authorization: Token …" -F file=@contacts.csv -F tags=diwali -F 'mapping={"Mobile": "phone"}' \\
         https://herald.example.com/api/v1/imports/

The upload answers 201 at once with the import waiting; GET /api/v1/imports/{id}/ shows its status
and counters moving while a worker runs it.
"""

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.fields import empty
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.reverse import reverse

from config.api import DetailSerializer, KnownFieldsMixin, NamedChoiceField, NamedEnumsMixin
from config.filters import QueryParametersMixin, takes_no_body
from config.permissions import StrictModelPermissions
from config.schema import DETAIL_OR_FIELD_ERRORS
from contacts.imports.selectors import (
    ErrorReportStatus,
    ErrorReportUnavailable,
    contact_import_error_report,
    contact_import_error_report_refusal,
    contact_import_error_report_status,
    contact_import_percent,
    contact_import_warnings,
)
from contacts.imports.services import (
    contact_import_cancel,
    contact_import_create,
    contact_import_permission_errors,
)
from contacts.models import ContactImport
from contacts.validators import tag_names_split

Kind, Mode = ContactImport.Kind, ContactImport.Mode


class ContactImportSerializer(NamedEnumsMixin, serializers.ModelSerializer):
    tags = serializers.SlugRelatedField(many=True, slug_field="name", read_only=True)
    percent = serializers.SerializerMethodField(help_text="Share of the file's rows read; null while unknown.")
    error_report_url = serializers.SerializerMethodField(
        help_text="CSV of the bad rows, and of the rows left out for repeating an earlier row (row, column, value, "
        "reason); null without one, once its file is removed, or "
        "when the client may not read it: it holds the rows' values, so it takes the permission to view what the "
        "import writes (contacts, unsubscribers or DLT templates) besides viewing imports."
    )
    error_report_status = serializers.SerializerMethodField(
        help_text="`none`: no bad or left-out rows (or not finished yet); `available`: error_report_url serves it; `removed`: "
        "it was written but its file is gone from the server's storage, so it can no longer be downloaded."
    )
    warnings = serializers.SerializerMethodField(
        help_text="Opt-out imports: options naming a sender or tag that no sender or tag is named (in any case), so "
        "that what the import records suppresses nothing until one is. Empty when all is well."
    )
    created_by = serializers.StringRelatedField()

    class Meta:
        model = ContactImport
        fields = [
            "id", "kind", "status", "original_name", "file_format", "mapping", "default_region", "mode", "options",
            "tags", "rows_total", "rows_read", "created", "updated", "unchanged", "invalid", "duplicates", "percent",
            "error_message", "error_report_url", "error_report_status", "warnings", "cancel_requested", "created_by",
            "created_at", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields
        enum_names = {"kind": "ImportKindEnum", "status": "ImportStatusEnum", "mode": "ImportModeEnum"}

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_percent(self, obj):
        return contact_import_percent(obj)

    def get_warnings(self, obj) -> list[str]:
        return contact_import_warnings(obj)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_error_report_url(self, obj):
        if self.get_error_report_status(obj) != ErrorReportStatus.AVAILABLE:
            return None
        request = self.context.get("request")
        if request is None or contact_import_error_report_refusal(user=request.user, contact_import=obj):
            return None
        return reverse("contactimport-errors", args=[obj.pk], request=self.context.get("request"))

    @extend_schema_field(NamedChoiceField(enum_name="ImportErrorReportStatusEnum", choices=ErrorReportStatus.choices))
    def get_error_report_status(self, obj):
        if not hasattr(obj, "_error_report_status"):  # one look at the storage for both fields
            obj._error_report_status = contact_import_error_report_status(obj)
        return obj._error_report_status


class FormJSONField(serializers.JSONField):
    """JSON in a form field, left out when empty: an HTML form or `curl -F mapping=` sends "", not JSON."""

    def get_value(self, dictionary):
        value = super().get_value(dictionary)
        return empty if getattr(value, "is_json_string", False) and not value.strip() else value

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except RecursionError:  # JSON nested deeper than the parser goes: bad JSON like any other, not a 500
            self.fail("invalid")


class ContactImportCreateSerializer(KnownFieldsMixin, serializers.Serializer):
    file = serializers.FileField(
        help_text="csv (any delimiter), txt (one number per line, or tab-separated columns), xls or xlsx."
    )
    kind = NamedChoiceField(enum_name="ImportKindEnum", choices=Kind.choices, default=Kind.CONTACTS)
    mapping = FormJSONField(
        required=False,
        help_text='Column -> field, e.g. {"Mobile": "phone", "City": "attributes.city", "Notes": ""}; '
        "header names are recognised without it.",
    )
    tags = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        help_text="Tag names applied to every imported contact; missing tags are created. Contacts imports only. "
        'A form field may list several, separated by commas: "diwali,vip".',
    )
    mode = NamedChoiceField(enum_name="ImportModeEnum", choices=Mode.choices, default=Mode.CREATE_UPDATE)
    default_region = serializers.CharField(
        required=False, allow_blank=True, max_length=2, help_text="Country of national numbers, e.g. IN."
    )
    options = FormJSONField(
        required=False,
        help_text='Unsubscribers: {"scope": "sender", "value": "HERALD", "reason": "…"}; '
        'DLT templates: {"account_id": 1}.',
    )

    def validate_tags(self, value: list[str]) -> list[str]:
        """`-F tags=diwali,vip` is two tags, as the admin's "new tags" are (a tag name has no comma)."""
        return [name for item in value for name in tag_names_split(item)]


class ImportChangePermissions(StrictModelPermissions):
    """Cancelling an import changes it: POST needs the change permission here, not add."""

    perms_map = {**StrictModelPermissions.perms_map, "POST": ["%(app_label)s.change_%(model_name)s"]}


class ContactImportViewSet(
    QueryParametersMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    queryset = ContactImport.objects.select_related("created_by").prefetch_related("tags")
    serializer_class = ContactImportSerializer
    parser_classes = [MultiPartParser, FormParser]
    filterset_fields = ["kind", "status", "mode"]
    search_fields = ["original_name"]
    ordering_fields = ["id", "created_at", "finished_at"]

    @extend_schema(
        request=ContactImportCreateSerializer,
        responses={
            201: ContactImportSerializer,
            403: OpenApiResponse(
                DETAIL_OR_FIELD_ERRORS,
                description="No permission on imports (`detail`), or a permission the import needs, by field: to add what its kind writes (`kind`), to "
                'change existing rows in "create_update" mode (`mode`) or to tag existing contacts (`tags`).',
            ),
        },
    )
    def create(self, request, *args, **kwargs):
        """Upload a file to import; it is checked at once (format, size, columns) and imported by a worker.

        Besides add on imports, it takes the permissions of what the import writes: add on its kind's model
        (contacts, unsubscribers, DLT templates), and change where it may change existing rows."""
        upload = ContactImportCreateSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        data = upload.validated_data
        if errors := contact_import_permission_errors(
            user=request.user, kind=data["kind"], mode=data["mode"], tagged=bool(data.get("tags"))
        ):
            raise PermissionDenied(errors)
        contact_import = contact_import_create(**data, user=request.user)
        data = self.get_serializer(contact_import).data
        return Response(data, status=status.HTTP_201_CREATED)

    @takes_no_body(
        responses={
            200: ContactImportSerializer,
            400: inline_serializer(
                "ImportCancelRefused", {"status": serializers.ListField(child=serializers.CharField())}
            ),
        },
    )
    @action(detail=True, methods=["post"], permission_classes=[ImportChangePermissions])
    def cancel(self, request, pk=None):
        """Cancel: a waiting import at once, a running one before its next chunk commits (rows committed stay)."""
        contact_import = contact_import_cancel(import_id=self.get_object().pk)
        return Response(self.get_serializer(contact_import).data)

    @extend_schema(
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="row, column, value, reason"),
            403: OpenApiResponse(
                DetailSerializer,
                description="The client may not view what the import writes (contacts, unsubscribers or DLT "
                "templates), whose values the report holds.",
            ),
            404: DetailSerializer,
        }
    )
    @action(detail=True, methods=["get"])
    def errors(self, request, pk=None):
        """The error report: one CSV line per bad row (UTF-8 with a BOM, so that Excel shows accents).

        It holds the bad rows' values, so it takes the permission to view what the import writes too."""
        contact_import = self.get_object()
        if refusal := contact_import_error_report_refusal(user=request.user, contact_import=contact_import):
            raise PermissionDenied(refusal)
        try:
            report = contact_import_error_report(contact_import)
        except ErrorReportUnavailable as exc:
            raise NotFound(str(exc)) from None
        return FileResponse(
            report,
            as_attachment=True,
            filename=f"import-{contact_import.pk}-errors.csv",
            content_type="text/csv",
        )


def register(router) -> None:
    """Add the imports viewset to the /api/v1/ router."""
    router.register("imports", ContactImportViewSet, basename="contactimport")
