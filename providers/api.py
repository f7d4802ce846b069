"""REST API for provider accounts, senders and DLT templates: /api/v1/provider-accounts/, senders/, templates/.

Credentials are write-only: accepted on create and update, returned masked.
"""

from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.api import IdRelationsMixin, KnownFieldsMixin, NamedChoiceField, NamedEnumsMixin, ServiceCheckedMixin
from config.filters import QueryParametersMixin, takes_no_body
from config.permissions import StrictModelPermissions
from config.schema import refuses_delete_while_used
from providers import dlt, services, sync
from providers.filters import DltTemplateFilter, ProviderAccountFilter, SenderFilter
from providers.models import Channel, DltTemplate, ProviderAccount, Sender


class CredentialsField(serializers.DictField):
    """Written: the secrets to store (a blank value keeps the stored one, null removes it). Read: masked."""

    def __init__(self, **kwargs):
        kwargs.setdefault("child", serializers.CharField(allow_blank=True, allow_null=True, trim_whitespace=True))
        super().__init__(**kwargs)

    def to_representation(self, value):
        return services.credentials_masked(value)


class ProviderAccountSerializer(KnownFieldsMixin, ServiceCheckedMixin, NamedEnumsMixin, serializers.ModelSerializer):
    credentials = CredentialsField(
        required=False,
        help_text='Secrets, e.g. {"login": "…", "api_key": "…"}; returned masked. On update, a blank value keeps '
        "the stored secret and null removes it (not one the vendor needs).",
    )
    channels = serializers.ListField(
        child=NamedChoiceField(enum_name="ChannelEnum", choices=Channel.choices), required=False, min_length=1
    )
    webhook_url = serializers.SerializerMethodField(
        help_text="Give this URL to the vendor for delivery reports. Its ?secret= is masked unless the client may "
        "change the account."
    )

    class Meta:
        model = ProviderAccount
        enum_names = {"kind": "ProviderKindEnum"}
        fields = [
            "id", "uuid", "kind", "name", "base_url", "credentials", "options", "channels",
            "max_recipients_per_request", "rate_limit", "price_per_part", "currency", "is_active", "webhook_url",
            "last_check_at", "last_check_ok", "last_check_message", "last_dlr_at", "last_sync_at", "last_sync_ok",
            "last_sync_message", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = [
            "uuid", "last_check_at", "last_check_ok", "last_check_message", "last_dlr_at", "last_sync_at",
            "last_sync_ok", "last_sync_message", "created_at", "updated_at",
        ]  # fmt: skip
        extra_kwargs = {
            "currency": {
                "required": False,
                "allow_blank": True,
                "help_text": "ISO code of price_per_part. Left out on create, or empty, the vendor's: MOBtexting INR, "
                "Octopush EUR, Devino OMNI RUB, Hyber / GMS UAH.",
            }
        }

    @extend_schema_field(serializers.CharField())
    def get_webhook_url(self, account: ProviderAccount) -> str:
        request = self.context.get("request")
        return services.provider_account_webhook_url(account=account, user=getattr(request, "user", None))

    def service_problems(self, attrs):
        return services.provider_account_write_problems(account=self.instance, **attrs)


class ConnectionCheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField(help_text="The vendor's own words.")
    balance = serializers.FloatField(allow_null=True)
    currency = serializers.CharField(allow_blank=True)


class AccountActionPermissions(StrictModelPermissions):
    """Testing or setting up an account acts on it: POST needs `change`."""

    perms_map = {**StrictModelPermissions.perms_map, "POST": ["%(app_label)s.change_%(model_name)s"]}


@refuses_delete_while_used
class ProviderAccountViewSet(QueryParametersMixin, viewsets.ModelViewSet):
    queryset = ProviderAccount.objects.all()
    serializer_class = ProviderAccountSerializer
    filterset_class = ProviderAccountFilter
    search_fields = ["name", "base_url"]
    ordering_fields = ["name", "kind", "created_at"]

    def perform_create(self, serializer):
        serializer.instance = services.provider_account_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.provider_account_update(account=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.provider_account_delete(account=instance)

    @takes_no_body(responses=ConnectionCheckSerializer)
    @action(detail=True, methods=["post"], url_path="test-connection", permission_classes=[AccountActionPermissions])
    def test_connection(self, request, pk=None):
        """Ask the vendor whether the credentials work, and the balance where it tells."""
        result = services.provider_account_test_connection(account=self.get_object())
        return Response(
            {"ok": result.ok, "message": result.message, "balance": result.balance, "currency": result.currency}
        )

    @takes_no_body(responses={202: ProviderAccountSerializer})
    @action(detail=True, methods=["post"], permission_classes=[AccountActionPermissions])
    def sync(self, request, pk=None):
        """Sync a MOBtexting account's sender IDs, DLT templates and opt-outs with the vendor, in the background
        (beat also does every hour). Answered at once: `last_sync_ok` is null while it runs, then says how it went,
        with `last_sync_message`. Another vendor keeps no such registry: 400."""
        account = self.get_object()
        sync.registries_sync_start(account_id=account.pk)
        account.refresh_from_db()
        return Response(ProviderAccountSerializer(account, context=self.get_serializer_context()).data, status=202)

    @takes_no_body(responses=ProviderAccountSerializer)
    @action(detail=True, methods=["post"], permission_classes=[AccountActionPermissions])
    def setup(self, request, pk=None):
        """Create what the vendor needs once (Devino's scenario task, MOBtexting's webhook and subscriptions)."""
        account = self.get_object()
        services.provider_account_setup(account=account)
        return Response(ProviderAccountSerializer(account, context=self.get_serializer_context()).data)


class SenderSerializer(
    KnownFieldsMixin, ServiceCheckedMixin, IdRelationsMixin, NamedEnumsMixin, serializers.ModelSerializer
):
    class Meta:
        model = Sender
        enum_names = {"channel": "ChannelEnum", "status": "ApprovalStatusEnum"}
        fields = [
            "id", "account", "name", "channel", "dlt_entity_id", "dlt_entity_name", "country", "service", "status",
            "remote_id", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]
        validators = []  # a name taken on the account is the service's (sender_check), naming `name`

    def service_problems(self, attrs):
        return services.sender_write_problems(sender=self.instance, **attrs)


@refuses_delete_while_used
class SenderViewSet(QueryParametersMixin, viewsets.ModelViewSet):
    queryset = Sender.objects.all()
    serializer_class = SenderSerializer
    filterset_class = SenderFilter
    search_fields = ["name", "dlt_entity_id", "dlt_entity_name", "remote_id"]
    ordering_fields = ["name", "account", "created_at"]

    def perform_create(self, serializer):
        serializer.instance = services.sender_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.sender_update(sender=serializer.instance, **serializer.validated_data)


class DltTemplateSerializer(
    KnownFieldsMixin, ServiceCheckedMixin, IdRelationsMixin, NamedEnumsMixin, serializers.ModelSerializer
):
    variables = serializers.SerializerMethodField(help_text="The keys that fill the body's variables, in order.")

    class Meta:
        model = DltTemplate
        enum_names = {"type": "DltTemplateTypeEnum", "status": "ApprovalStatusEnum"}
        fields = [
            "id", "account", "name", "dlt_template_id", "type", "body", "variables", "senders", "headers", "status",
            "is_english", "remote_id", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["headers", "created_at", "updated_at"]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_variables(self, template: DltTemplate) -> list[str]:
        return dlt.template_variables(template.body)

    def service_problems(self, attrs):
        return services.dlt_template_write_problems(template=self.instance, **attrs)


def _variable_values(value):
    if not isinstance(value, dict | list):
        raise serializers.ValidationError("Give an object of keys to values, or a list of values.")
    return value


@extend_schema_field({"deprecated": True})
class _DeprecatedJSONField(serializers.JSONField):
    """A JSON field the schema marks deprecated: kept for clients written against its old name."""


class TemplateRenderSerializer(KnownFieldsMixin, serializers.Serializer):
    """`variables`, as a transactional send names them; `values`, their first name, still taken alone or with the
    same content. `validated_data` holds `variables` and `field`, the name the client used (errors are under it)."""

    variables = serializers.JSONField(
        required=False,
        help_text='Variable values by key ({"var": "1234"}) or as a list in the order of the template\'s '
        "`variables`, as `POST /api/v1/messages/` takes them.",
    )
    values = _DeprecatedJSONField(required=False, help_text="The older name of `variables`, still accepted.")

    validate_variables = staticmethod(_variable_values)
    validate_values = staticmethod(_variable_values)

    def validate(self, attrs):
        given = [name for name in ("variables", "values") if name in attrs]
        if not given:
            raise serializers.ValidationError({"variables": ["This field is required."]})
        if len(given) == 2 and attrs["variables"] != attrs["values"]:
            raise serializers.ValidationError(
                {"values": ["`values` is the older name of `variables`, and the two differ: give `variables` only."]}
            )
        return {"variables": attrs[given[0]], "field": given[0]}


class TemplateMatchSerializer(KnownFieldsMixin, serializers.Serializer):
    text = serializers.CharField(trim_whitespace=False, help_text="The text to check against the template.")


class ReadingPostPermissions(StrictModelPermissions):
    """Rendering or checking a text against a template writes nothing: `view` is enough."""

    perms_map = {**StrictModelPermissions.perms_map, "POST": ["%(app_label)s.view_%(model_name)s"]}


@refuses_delete_while_used
class DltTemplateViewSet(QueryParametersMixin, viewsets.ModelViewSet):
    queryset = DltTemplate.objects.prefetch_related("senders")
    serializer_class = DltTemplateSerializer
    filterset_class = DltTemplateFilter
    search_fields = ["name", "dlt_template_id", "body"]
    ordering_fields = ["name", "dlt_template_id", "created_at"]

    def perform_create(self, serializer):
        serializer.instance = services.dlt_template_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.dlt_template_update(template=serializer.instance, **serializer.validated_data)

    @extend_schema(
        request=TemplateRenderSerializer,
        responses=inline_serializer("TemplateRendered", {"text": serializers.CharField()}),
    )
    @action(detail=True, methods=["post"], permission_classes=[ReadingPostPermissions])
    def render(self, request, pk=None):
        """The template's text with the given variable values (each at most 30 characters)."""
        serializer = TemplateRenderSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        text = services.dlt_template_render(template=self.get_object(), values=data["variables"], field=data["field"])
        return Response({"text": text})

    @extend_schema(
        request=TemplateMatchSerializer,
        responses=inline_serializer(
            "TemplateMatched", {"variables": serializers.DictField(child=serializers.CharField())}
        ),
    )
    @action(detail=True, methods=["post"], permission_classes=[ReadingPostPermissions])
    def match(self, request, pk=None):
        """Check a text against the template: its variable values, or 400 saying where it departs."""
        serializer = TemplateMatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        variables = services.dlt_template_match(template=self.get_object(), text=serializer.validated_data["text"])
        return Response({"variables": variables})


def register(router) -> None:
    """Add this app's viewsets to the /api/v1/ router."""
    router.register("provider-accounts", ProviderAccountViewSet, basename="provider-account")
    router.register("senders", SenderViewSet, basename="sender")
    router.register("templates", DltTemplateViewSet, basename="template")
