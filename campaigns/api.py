"""REST API for campaigns and messages: /api/v1/campaigns/ (with its actions) and /api/v1/messages/
(which also takes transactional sends). Each action validates, calls one service, presents the result."""

from django.db import models
from django.db.models import Prefetch
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from campaigns import services
from campaigns.filters import CampaignFilter, MessageFilter
from campaigns.models import FRAME_SIZE_TOO_SMALL, Campaign, Message
from campaigns.selectors import SHOWN_STATUS_CHOICES, campaign_estimate, campaign_stats, messages_shown
from campaigns.services.editing import campaign_create, campaign_delete, campaign_update, campaign_write_problems
from campaigns.services.send_test import TEST_NUMBERS_MAX, SendTestThrottled, campaign_send_test
from campaigns.services.transactional import IDEMPOTENCY_KEY_MAX
from config.api import (
    ClockDateTimeField,
    IdRelatedField,
    IdRelationsMixin,
    KnownFieldsMixin,
    NamedChoiceField,
    NamedEnumsMixin,
    RelatedIdsField,
    ServiceCheckedMixin,
)
from config.filters import FilterBackend, QueryParametersMixin, takes_no_body
from config.pagination import PagesSchemaMixin, StrictPageSizeMixin
from config.permissions import StrictModelPermissions
from config.schema import FieldErrorsSerializer
from contacts.api import TagByNameField
from contacts.models import Contact
from providers.models import Channel, DltTemplate, ProviderAccount, Sender


class CampaignActionPermissions(StrictModelPermissions):
    """Launching, pausing or cancelling a campaign changes it: POST needs `change`, not `add`."""

    perms_map = {**StrictModelPermissions.perms_map, "POST": ["%(app_label)s.change_%(model_name)s"]}


class CampaignCreatingPermissions(StrictModelPermissions):
    """Duplicating a campaign makes one from another, whose text and audience the copy shows: POST needs `add`
    and `view` (as the admin's Duplicate… does)."""

    perms_map = {
        **StrictModelPermissions.perms_map,
        "POST": ["%(app_label)s.add_%(model_name)s", "%(app_label)s.view_%(model_name)s"],
    }


class CampaignSerializer(
    KnownFieldsMixin, ServiceCheckedMixin, IdRelationsMixin, NamedEnumsMixin, serializers.ModelSerializer
):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: ClockDateTimeField,
    }  # send_at, send_by: without an offset, on TIME_ZONE's clock
    tags = TagByNameField(
        many=True, required=False, help_text="Audience: contacts with any/all (tags_operator) of these tag names."
    )
    excluded_tags = TagByNameField(
        many=True, required=False, help_text="Contacts with any of these tag names are left out."
    )
    contacts = RelatedIdsField(
        queryset=Contact.objects.all(), required=False, max_length=100_000, help_text="Explicit recipients (ids)."
    )

    class Meta:
        model = Campaign
        enum_names = {
            "channel": "ChannelEnum", "purpose": "CampaignPurposeEnum", "tags_operator": "TagOperatorEnum",
            "state": "CampaignStateEnum", "recurrence": "CampaignRecurrenceEnum",
        }  # fmt: skip
        fields = [
            "id", "name", "channel", "account", "sender", "template", "text", "purpose",
            "tags", "tags_operator", "segments", "excluded_tags", "contacts",
            "send_at", "recurrence", "smooth_minutes", "send_by", "frame_size",
            "state", "state_reason", "counters", "audience_size", "parts", "encoding", "cost_estimate", "cost_actual",
            "parent", "created_by", "created_at", "updated_at", "launched_at", "completed_at",
        ]  # fmt: skip
        read_only_fields = [
            "state", "state_reason", "counters", "audience_size", "parts", "encoding", "cost_estimate", "cost_actual",
            "parent", "created_by", "created_at", "updated_at", "launched_at", "completed_at",
        ]  # fmt: skip
        extra_kwargs = {
            "frame_size": {"error_messages": {"min_value": FRAME_SIZE_TOO_SMALL}},  # the model's, not DRF's words
            "counters": {
                "help_text": "Messages per stored status: one whose request to the provider is under way is `pending` "
                "here (the message list shows it as `sending`); stats/ counts those as `in_flight`."
            },
        }

    def create(self, validated_data):
        return campaign_create(data=validated_data, user=self.context["request"].user)

    def update(self, instance, validated_data):
        return campaign_update(campaign=instance, data=validated_data)

    def service_problems(self, attrs):
        return campaign_write_problems(campaign=self.instance, data=attrs)


class ProblemSerializer(serializers.Serializer):
    field = serializers.CharField()
    message = serializers.CharField()


class EstimateSerializer(serializers.Serializer):
    """What launching would do: who receives it, what it costs, and every problem that stops it."""

    audience = serializers.IntegerField(help_text="Everyone the audience rules select.")
    sendable = serializers.IntegerField(help_text="The audience minus the suppressed.")
    suppressed = serializers.DictField(child=serializers.IntegerField(), help_text="Suppressed, by reason.")
    suppressed_total = serializers.IntegerField()
    encoding = serializers.CharField(help_text="GSM-7 or UCS-2, of the first recipient's text (text_sample).")
    parts = serializers.IntegerField(help_text="Parts of the first recipient's text.")
    length = serializers.IntegerField(help_text="Length of the first recipient's text, in septets or UTF-16 units.")
    per_part = serializers.IntegerField()
    ucs2_character = serializers.CharField(help_text="The first character that forces UCS-2, if any.")
    ucs2_position = serializers.IntegerField()
    parts_total = serializers.IntegerField(
        help_text="Parts of every sendable recipient's text, each filled with their values: what `cost` is for."
    )
    parts_least = serializers.IntegerField(help_text="Parts of the shortest recipient's text.")
    parts_most = serializers.IntegerField(help_text="Parts of the longest recipient's text.")
    encodings = serializers.DictField(
        child=serializers.IntegerField(), help_text="Sendable recipients whose text goes in GSM-7, in UCS-2."
    )
    parts_summary = serializers.CharField(
        help_text="In words, when recipients' texts take different parts or encodings (names, attributes); else empty."
    )
    text_sample = serializers.CharField(
        help_text="The text as the first recipient would get it; with its {{variables}} as written (no contact's "
        "data) when the client may not view contacts."
    )
    missing_variables = serializers.DictField(child=serializers.IntegerField())
    cost = serializers.CharField()
    currency = serializers.CharField()
    frame_size = serializers.IntegerField()
    frames = serializers.IntegerField()
    deferred_until = serializers.DateTimeField(allow_null=True, help_text="Set when the promotional window is closed.")
    problems = ProblemSerializer(many=True)
    warnings = serializers.ListField(
        child=serializers.CharField(),
        help_text="Worth knowing before launching, but not stopping it (e.g. recipients whose own time zone is "
        "outside the promotional window: they get it when it opens there).",
    )
    ok = serializers.BooleanField()


class FunnelStageSerializer(serializers.Serializer):
    stage = serializers.CharField(help_text="audience, reachable, sent, accepted or delivered.")
    label = serializers.CharField(help_text="As the admin's delivery funnel names it.")
    count = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    """A campaign's progress: the numbers the admin's progress panel shows, from the same function."""

    state = serializers.CharField()
    state_reason = serializers.CharField()
    counters = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Messages per stored status. A message whose request to the provider is under way is `pending` "
        "here until the provider answers (see `in_flight`).",
    )
    total = serializers.IntegerField(help_text="Every message of the campaign, suppressed ones included.")
    final = serializers.IntegerField(
        help_text="Messages with a final status: delivered, read, clicked, a failure, or suppressed."
    )
    progress = serializers.FloatField(help_text="`final` as a percentage of `total`.")
    sent = serializers.IntegerField(
        help_text="Messages the provider took (the funnel's `sent`): submitted, sent, delivered, read or clicked, "
        "and failures the provider reported after taking them (undelivered, expired, rejected later). Not those "
        "waiting or being sent, suppressed, refused by the provider when submitted, or failed before reaching it "
        "(cancelled, past the send-by deadline, outcome unknown)."
    )
    sent_progress = serializers.FloatField(
        help_text="Percentage handed to the provider: `sent` as a percentage of `total`."
    )
    in_flight = serializers.IntegerField(
        help_text="Messages whose request to the provider is under way right now (the message list shows them as "
        "`sending`); counted among `counters.pending`."
    )
    funnel = FunnelStageSerializer(
        many=True,
        help_text="Audience (`total`) → reachable (not suppressed) → sent (`sent`) → accepted (sent, and not "
        "rejected afterwards by the provider or the operator) → delivered (delivered, read or clicked).",
    )
    frames_per_minute = serializers.FloatField(
        help_text="Requests to the provider answered per minute, over the last 5 minutes (or since the launch, if "
        "later); 0 while the campaign is not sending."
    )
    not_sent = serializers.IntegerField(
        help_text="Messages closed before they were sent: the campaign was cancelled or failed, or its send-by "
        "deadline passed. Counted among `counters.failed` or `counters.expired` with the error code `not-sent`; "
        "no provider had them, so they count in no delivery rate."
    )
    frames = serializers.DictField(child=serializers.IntegerField(), help_text="Requests to the provider per state.")
    last_errors = serializers.ListField(
        child=serializers.DictField(),
        help_text="The five latest requests to the provider that met an error (one still retried too): `seq` (the "
        "request's place in the campaign, from 0; the admin counts from 1), `state`, `attempts`, `error` and "
        "`error_code`.",
    )
    failures = serializers.ListField(
        child=serializers.DictField(), help_text="Failed messages by status, code and reason."
    )
    cost_estimate = serializers.CharField(allow_null=True)
    cost_actual = serializers.CharField()
    currency = serializers.CharField()


class SendTestSerializer(KnownFieldsMixin, serializers.Serializer):
    """Send the campaign's message to a few numbers of your own before launching it."""

    to = serializers.ListField(
        child=serializers.CharField(),
        min_length=1,
        max_length=TEST_NUMBERS_MAX,
        help_text=f"One to {TEST_NUMBERS_MAX} phone numbers (E.164, or national: read in the country of the "
        "campaign's sender, else in DEFAULT_PHONE_REGION), or e-mail addresses for an e-mail campaign.",
    )
    contact = IdRelatedField(
        queryset=Contact.objects.all(),
        required=False,
        allow_null=True,
        help_text="The contact whose fields fill the text's variables. Without it: for a number that is a contact, "
        "that contact; for the others, the campaign's first recipient (the estimate's `text_sample`). Not for a "
        "client that may not view contacts, whose tests leave the variables empty.",
    )


class SendTestResultSerializer(serializers.Serializer):
    to = serializers.CharField(help_text="The number as sent to (E.164).")
    status = NamedChoiceField(
        enum_name="MessageStatusEnum",
        choices=SHOWN_STATUS_CHOICES,
        help_text="`submitted` (or later): the provider took it, `provider_message_id` is its id; `rejected` or "
        "`failed`: refused, `reason` and `error_code` keep the provider's words; `suppressed`: the number opted out "
        "(`reason` says of what) and nothing was sent; `pending`: the provider asked to try again later, or did not "
        "answer within PROVIDER_HTTP_TIMEOUT, which a worker follows up. Follow `status_url` for its delivery report.",
    )
    reason = serializers.CharField()
    error_code = serializers.CharField()
    provider_message_id = serializers.CharField()
    message = serializers.IntegerField(help_text="The test message's id (a transactional message of no campaign).")
    status_url = serializers.URLField()
    text = serializers.CharField(help_text="The text as sent.")
    filled_from = serializers.IntegerField(
        allow_null=True, help_text="The contact whose fields filled the text; null if the text has no variables."
    )


class SendTestAnswerSerializer(serializers.Serializer):
    results = SendTestResultSerializer(many=True, help_text="One per number, in the order given (each number once).")


@extend_schema_view(
    destroy=extend_schema(
        responses={
            204: None,
            400: OpenApiResponse(
                FieldErrorsSerializer, description="A campaign preparing or sending is not deleted: cancel it first."
            ),
        }
    )
)
class CampaignViewSet(QueryParametersMixin, viewsets.ModelViewSet):
    queryset = Campaign.objects.exclude(state=Campaign.State.DELETING).prefetch_related(
        "tags", "excluded_tags", "segments", Prefetch("contacts", queryset=Contact.objects.only("id"))
    )
    serializer_class = CampaignSerializer
    filterset_class = CampaignFilter
    search_fields = ["name"]
    ordering_fields = ["id", "name", "state", "created_at", "send_at", "launched_at"]

    def perform_destroy(self, instance):
        """Gone from the API at once; a campaign of many messages is deleted in the background (campaigns_delete)."""
        campaign_delete(campaign=instance)

    def _transition(self, service, **kwargs) -> Response:
        campaign = service(campaign_id=self.get_object().pk, **kwargs)
        campaign.refresh_from_db()
        return Response(CampaignSerializer(campaign, context=self.get_serializer_context()).data)

    @takes_no_body(responses=EstimateSerializer)
    @action(detail=True, methods=["post"], permission_classes=[CampaignActionPermissions])
    def estimate(self, request, pk=None):
        """Audience size, suppressions, parts and cost, and the compliance checks, without sending."""
        return Response(campaign_estimate(campaign=self.get_object(), user=request.user).as_dict())

    @takes_no_body(responses=CampaignSerializer)
    @action(detail=True, methods=["post"], permission_classes=[CampaignActionPermissions])
    def launch(self, request, pk=None):
        """Launch a draft or scheduled campaign."""
        return self._transition(services.campaign_launch)

    @takes_no_body(responses=CampaignSerializer)
    @action(detail=True, methods=["post"], url_path="send-now", url_name="send-now",
            permission_classes=[CampaignActionPermissions])  # fmt: skip
    def send_now(self, request, pk=None):
        """Launch a scheduled campaign now instead of at its send time, which is cleared (the launch's checks and
        the promotional window still apply; refused for a daily or weekly one)."""
        return self._transition(services.campaign_send_now)

    @takes_no_body(responses=CampaignSerializer)
    @action(detail=True, methods=["post"], permission_classes=[CampaignActionPermissions])
    def unschedule(self, request, pk=None):
        """A scheduled campaign back to draft, its send time kept: nothing is sent until it is launched again."""
        return self._transition(services.campaign_unschedule)

    @takes_no_body(responses=CampaignSerializer)
    @action(detail=True, methods=["post"], permission_classes=[CampaignActionPermissions])
    def pause(self, request, pk=None):
        """Pause a sending campaign between frames."""
        return self._transition(services.campaign_pause)

    @takes_no_body(responses=CampaignSerializer)
    @action(detail=True, methods=["post"], permission_classes=[CampaignActionPermissions])
    def resume(self, request, pk=None):
        """Resume a paused campaign."""
        return self._transition(services.campaign_resume)

    @takes_no_body(responses=CampaignSerializer)
    @action(detail=True, methods=["post"], permission_classes=[CampaignActionPermissions])
    def cancel(self, request, pk=None):
        """Cancel a campaign; messages not yet sent are never sent."""
        return self._transition(services.campaign_cancel)

    @takes_no_body(responses={201: CampaignSerializer})
    @action(detail=True, methods=["post"], permission_classes=[CampaignCreatingPermissions])
    def duplicate(self, request, pk=None):
        """A draft copy of the campaign, in any state: the same message, audience and options, without its send
        time, deadline, counters or costs. Answers the copy (201)."""
        copy = services.campaign_duplicate(campaign_id=self.get_object().pk, user=request.user)
        return Response(CampaignSerializer(copy, context=self.get_serializer_context()).data, status=201)

    @extend_schema(
        request=SendTestSerializer,
        responses={
            200: SendTestAnswerSerializer,
            400: OpenApiResponse(FieldErrorsSerializer, description="A number, the campaign or its state refuses it."),
            429: OpenApiResponse(
                description="The campaign was tested CAMPAIGN_TESTS_PER_MINUTE times (3) in the last minute; "
                "`Retry-After` says in how many seconds it may be again."
            ),
        },
    )
    @action(detail=True, methods=["post"], url_path="test", url_name="test",
            permission_classes=[CampaignActionPermissions])  # fmt: skip
    def send_test(self, request, pk=None):
        """Send a draft or scheduled campaign's message to one to five numbers now, as the campaign would send it
        (its account, sender, DLT template and text, filled from a contact's fields); answers what became of each.
        Test messages never count in the campaign's counters, and never keep it from anyone when launched."""
        serializer = SendTestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        contact = serializer.validated_data.get("contact")
        try:
            results = campaign_send_test(
                campaign_id=self.get_object().pk,
                to=serializer.validated_data["to"],
                contact_id=contact.pk if contact else None,
                user=request.user,
            )
        except SendTestThrottled as exc:
            throttled = exceptions.Throttled(detail=str(exc))  # its words say the wait: DRF's would say it again
            throttled.wait = exc.retry_after  # Retry-After
            raise throttled from None
        answer = []
        for result in results:
            message = result.message
            answer.append({
                "to": result.to, "status": message.shown_status, "reason": message.reason,
                "error_code": message.error_code, "provider_message_id": message.provider_message_id,
                "message": message.pk, "text": message.text,
                "status_url": request.build_absolute_uri(reverse("message-detail", args=[message.pk])),
                "filled_from": result.filled_from.pk if result.filled_from else None,
            })  # fmt: skip
        return Response({"results": answer})

    @extend_schema(request=None, responses=StatsSerializer, filters=False)
    @action(detail=True, methods=["get"])
    def stats(self, request, pk=None):
        """Messages per status, progress, sending rate, recent errors and failures by reason."""
        return Response(campaign_stats(campaign=self.get_object()))


class MessageSerializer(NamedEnumsMixin, serializers.ModelSerializer):
    status = NamedChoiceField(
        enum_name="MessageStatusEnum",
        choices=SHOWN_STATUS_CHOICES,
        source="shown_status",
        read_only=True,
        help_text="`sending`: its request to the provider is under way right now (its frame is being sent); "
        "the provider's answer moves it on.",
    )
    test_of = serializers.IntegerField(
        source="test_send.campaign_id",
        read_only=True,
        allow_null=True,
        help_text="The campaign this message was a test of (`POST /api/v1/campaigns/{id}/test/`); null for any other. "
        "A test belongs to no campaign (`campaign` is null) and never counts in one.",
    )

    class Meta:
        model = Message
        enum_names = {"channel": "ChannelEnum"}
        fields = [
            "id", "campaign", "contact", "account", "frame", "channel", "address", "text", "status", "reason",
            "error_code", "provider_message_id", "external_ref", "parts", "encoding", "cost", "created_at",
            "queued_at", "submitted_at", "final_at", "updated_at", "idempotency_key", "test_of",
        ]  # fmt: skip
        read_only_fields = fields


class NewestFirstPagination(PagesSchemaMixin, StrictPageSizeMixin, CursorPagination):
    """Cursor pages, newest first: no COUNT(*) and no deep OFFSET on a table of millions of rows."""

    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    page_size_query_description = "Results per page, 1 to 1000 (100 unless given); more is taken as 1000."
    cursor_query_description = "The cursor of a page's `next` or `previous` link, as given (one made up is a 404)."
    max_page_size = 1000

    def decode_cursor(self, request):
        """DRF checks a cursor's offset and direction but not its position, which it compares with the ordering
        field: a made-up one (`p=abc`, base64 `cD1hYmM=`) was a 500 from the query. The position is an id, a whole
        number (one past bigint's range is no id either)."""
        cursor = super().decode_cursor(request)
        position = cursor.position if cursor is not None else None
        if position is not None and not (position.isascii() and position.isdigit() and int(position) < 2**63):
            raise exceptions.NotFound(self.invalid_cursor_message)
        return cursor


class TransactionalSendSerializer(KnownFieldsMixin, serializers.Serializer):
    """One message now (an OTP, an order update): give the text, or a DLT template and its variables."""

    account = IdRelatedField(queryset=ProviderAccount.objects.all())
    to = serializers.CharField(help_text="Phone number (E.164 or national) or e-mail address.")
    text = serializers.CharField(required=False, allow_blank=True, default="")
    sender = IdRelatedField(queryset=Sender.objects.all(), required=False, allow_null=True)
    template = IdRelatedField(queryset=DltTemplate.objects.all(), required=False, allow_null=True)
    variables = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False, default=dict)
    channel = NamedChoiceField(enum_name="ChannelEnum", choices=Channel.choices, default=Channel.SMS)
    purpose = NamedChoiceField(
        enum_name="CampaignPurposeEnum", choices=Campaign.Purpose.choices, default=Campaign.Purpose.TRANSACTIONAL
    )


class TransactionalAcceptedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = NamedChoiceField(
        enum_name="MessageStatusEnum",
        choices=SHOWN_STATUS_CHOICES,
        help_text="As the status URL shows it now: `pending` for a new message, `suppressed` for an unsubscribed "
        "address; a retry with the same Idempotency-Key gets the first message's status (`sending` while its "
        "request to the provider is under way).",
    )
    reason = serializers.CharField()
    external_ref = serializers.UUIDField()
    status_url = serializers.URLField()


class MessageViewSet(QueryParametersMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    queryset = messages_shown(Message.objects.select_related("test_send"))
    serializer_class = MessageSerializer
    filterset_class = MessageFilter
    filter_backends = [FilterBackend]  # exact filters only: no search, no ordering
    pagination_class = NewestFirstPagination

    @extend_schema(
        request=TransactionalSendSerializer,
        responses={202: TransactionalAcceptedSerializer},
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX},
                OpenApiParameter.HEADER,
                required=False,
                description="Any unique string up to 255 characters (a UUID, your order id). A retry with the same key "
                "and account sends nothing: it answers with the first message (and `Idempotent-Replayed: true`). "
                "The same key with another number, text, channel, sender, DLT template or purpose is a 400 naming what "
                "differs. A key is kept 24 hours "
                "(IDEMPOTENCY_KEY_RETENTION_HOURS) from its first request; then it sends anew.",
            ),
            OpenApiParameter(
                "Location",
                str,
                OpenApiParameter.HEADER,
                response=[202],
                description="The message's status URL (as `status_url`).",
            ),
            OpenApiParameter(
                "Idempotent-Replayed",
                str,
                OpenApiParameter.HEADER,
                response=[202],
                enum=["true"],
                description="Present when the Idempotency-Key was used before: nothing was sent, the answer is the "
                "first message's.",
            ),
        ],
    )
    def create(self, request, *args, **kwargs):
        """Send one transactional message; answers 202 with its id and where to follow its status."""
        serializer = TransactionalSendSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key", "").strip()
        message, replayed = services.message_send_transactional_once(idempotency_key=key, **serializer.validated_data)
        # As its status URL shows it (the same queryset): `sending` while a retry finds it on the wire.
        shown = self.get_queryset().values("shown_status", "reason").get(pk=message.pk)
        status_url = request.build_absolute_uri(reverse("message-detail", args=[message.pk]))
        body = {"id": message.pk, "status": shown["shown_status"], "reason": shown["reason"],
                "external_ref": message.external_ref, "status_url": status_url}  # fmt: skip
        headers = {"Location": status_url, **({"Idempotent-Replayed": "true"} if replayed else {})}
        return Response(body, status=status.HTTP_202_ACCEPTED, headers=headers)


def register(router) -> None:
    """Add this app's viewsets to the /api/v1/ router."""
    router.register("campaigns", CampaignViewSet, basename="campaign")
    router.register("messages", MessageViewSet, basename="message")
