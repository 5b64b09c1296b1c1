from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.webhooks.event_types import EventType
from apps.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

EVENT_HELP = "Event types to send: " + ", ".join(EventType.values) + "."


class WebhookEndpointSerializer(serializers.ModelSerializer):
    events = serializers.ListField(child=serializers.CharField(max_length=40), help_text=EVENT_HELP)

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "events", "is_active", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="The signing secret (whsec_...). Shown only in this answer: store it now."
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookEndpointInputSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=500, help_text="https:// URL that receives the POSTs.")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    events = serializers.ListField(
        child=serializers.CharField(max_length=40), min_length=1, max_length=20, help_text=EVENT_HELP
    )
    is_active = serializers.BooleanField(required=False, default=True)


class WebhookEndpointPatchSerializer(WebhookEndpointInputSerializer):
    url = serializers.CharField(max_length=500, required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    events = serializers.ListField(
        child=serializers.CharField(max_length=40), min_length=1, max_length=20, required=False, help_text=EVENT_HELP
    )
    is_active = serializers.BooleanField(required=False)


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = [
            "number",
            "trigger",
            "url",
            "succeeded",
            "response_status",
            "response_body",
            "error",
            "duration_ms",
            "created_at",
        ]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    event = serializers.SerializerMethodField()
    attempt_log = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint",
            "event",
            "status",
            "attempts",
            "next_attempt_at",
            "first_attempt_at",
            "last_attempt_at",
            "response_status",
            "response_body",
            "error",
            "duration_ms",
            "created_at",
            "attempt_log",
        ]

    @extend_schema_field(
        {
            "type": "object",
            "properties": {"id": {"type": "string"}, "type": {"type": "string"}, "payload": {"type": "object"}},
        }
    )
    def get_event(self, obj: WebhookDelivery) -> dict[str, Any]:
        return {"id": obj.event.public_id, "type": obj.event.type, "payload": obj.event.payload}
