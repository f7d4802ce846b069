"""REST API for campaigns and messages: /api/v1/campaigns/ (with its actions) and /api/v1/messages/.

The action endpoints (estimate, launch, pause, resume, cancel, stats) answer 501 until the engine
lands; each is one small method so that its body can be replaced by one service call.
"""

from django.db.models import Prefetch
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination

from campaigns.filters import CampaignFilter, MessageFilter
from campaigns.models import Campaign, Message
from config.api import DetailSerializer, NamedEnumsMixin, RelatedIdsField, not_implemented
from config.permissions import StrictModelPermissions
from contacts.models import Contact, Tag
from providers.models import Channel

EDITABLE_STATES = (Campaign.State.DRAFT, Campaign.State.SCHEDULED)
RUNNING_STATES = (Campaign.State.PREPARING, Campaign.State.SENDING, Campaign.State.PAUSED)
NOT_YET = {501: OpenApiResponse(DetailSerializer, description="Not implemented yet.")}


class CampaignActionPermissions(StrictModelPermissions):
    """Launching, pausing or cancelling a campaign changes it: POST needs `change`, not `add`."""

    perms_map = {**StrictModelPermissions.perms_map, "POST": ["%(app_label)s.change_%(model_name)s"]}


class CampaignSerializer(NamedEnumsMixin, serializers.ModelSerializer):
    tags = serializers.SlugRelatedField(
        many=True, slug_field="name", queryset=Tag.objects.all(), required=False,
        help_text="Audience: contacts with any/all (tags_operator) of these tag names.",
    )  # fmt: skip
    excluded_tags = serializers.SlugRelatedField(
        many=True, slug_field="name", queryset=Tag.objects.all(), required=False,
        help_text="Contacts with any of these tag names are left out.",
    )  # fmt: skip
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

    def validate(self, attrs):
        # Consistency checks that belong to campaign services (campaign_create / campaign_update) once they
        # exist; they live here meanwhile so that the API never stores a sender of another account.
        if self.instance is not None and self.instance.state not in EDITABLE_STATES:
            raise serializers.ValidationError({"state": f"A {self.instance.state} campaign cannot be edited."})
        account = attrs.get("account", getattr(self.instance, "account", None))
        sender = attrs.get("sender", getattr(self.instance, "sender", None))
        template = attrs.get("template", getattr(self.instance, "template", None))
        channel = attrs.get("channel") or getattr(self.instance, "channel", None) or Channel.SMS
        if account is not None:
            if sender is not None and sender.account_id != account.pk:
                raise serializers.ValidationError({"sender": f"{sender.name} is not a sender of {account.name}."})
            if template is not None and template.account_id not in (None, account.pk):
                raise serializers.ValidationError({"template": "This template belongs to another account."})
            if channel not in (account.channels or []):
                raise serializers.ValidationError({"channel": f"{account.name} does not have {channel} enabled."})
        return attrs


class CampaignViewSet(viewsets.ModelViewSet):
    queryset = Campaign.objects.prefetch_related(
        "tags", "excluded_tags", "segments", Prefetch("contacts", queryset=Contact.objects.only("id"))
    )
    serializer_class = CampaignSerializer
    filterset_class = CampaignFilter
    search_fields = ["name"]
    ordering_fields = ["id", "name", "state", "created_at", "send_at", "launched_at"]

    def perform_create(self, serializer):
        serializer.save(created_by=self.request.user)

    def perform_destroy(self, instance):
        if instance.state in RUNNING_STATES:
            raise serializers.ValidationError({"state": f"A {instance.state} campaign cannot be deleted; cancel it."})
        instance.delete()

    @extend_schema(request=None, responses=NOT_YET)
    @action(detail=True, methods=["post"], permission_classes=[CampaignActionPermissions])
    def estimate(self, request, pk=None):
        """Audience size, suppressions, parts and cost, and the compliance checks, without sending."""
        return not_implemented("Campaign estimates arrive with the campaign engine.")

    @extend_schema(request=None, responses=NOT_YET)
    @action(detail=True, methods=["post"], permission_classes=[CampaignActionPermissions])
    def launch(self, request, pk=None):
        """Launch a draft or scheduled campaign."""
        return not_implemented("Launching arrives with the campaign engine.")

    @extend_schema(request=None, responses=NOT_YET)
    @action(detail=True, methods=["post"], permission_classes=[CampaignActionPermissions])
    def pause(self, request, pk=None):
        """Pause a sending campaign between frames."""
        return not_implemented("Pausing arrives with the campaign engine.")

    @extend_schema(request=None, responses=NOT_YET)
    @action(detail=True, methods=["post"], permission_classes=[CampaignActionPermissions])
    def resume(self, request, pk=None):
        """Resume a paused campaign."""
        return not_implemented("Resuming arrives with the campaign engine.")

    @extend_schema(request=None, responses=NOT_YET)
    @action(detail=True, methods=["post"], permission_classes=[CampaignActionPermissions])
    def cancel(self, request, pk=None):
        """Cancel a campaign; messages not yet sent are never sent."""
        return not_implemented("Cancelling arrives with the campaign engine.")

    @extend_schema(request=None, responses=NOT_YET, filters=False)
    @action(detail=True, methods=["get"])
    def stats(self, request, pk=None):
        """Messages per status, cost and delivery over time."""
        return not_implemented("Campaign statistics arrive with the campaign engine.")


class MessageSerializer(NamedEnumsMixin, serializers.ModelSerializer):
    class Meta:
        model = Message
        enum_names = {"channel": "ChannelEnum", "status": "MessageStatusEnum"}
        fields = [
            "id", "campaign", "contact", "account", "frame", "channel", "address", "text", "status", "reason",
            "error_code", "provider_message_id", "external_ref", "parts", "encoding", "cost", "created_at",
            "queued_at", "submitted_at", "final_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class NewestFirstPagination(CursorPagination):
    """Cursor pages, newest first: no COUNT(*) and no deep OFFSET on a table of millions of rows."""

    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class MessageViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Message.objects.all()
    serializer_class = MessageSerializer
    filterset_class = MessageFilter
    filter_backends = [DjangoFilterBackend]
    pagination_class = NewestFirstPagination


def register(router) -> None:
    """Add this app's viewsets to the /api/v1/ router."""
    router.register("campaigns", CampaignViewSet, basename="campaign")
    router.register("messages", MessageViewSet, basename="message")
