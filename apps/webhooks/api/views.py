"""Webhook endpoints (CRUD, secret rotation) and the delivery log (list, filters, replay) for the
token's merchant. Another merchant's endpoint or delivery is a 404."""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api import error_responses
from apps.merchants import roles
from apps.merchants.viewsets import MerchantScopedViewSet
from apps.webhooks import selectors, services
from apps.webhooks.event_types import EventType
from apps.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

from .serializers import (
    WebhookDeliverySerializer,
    WebhookEndpointCreatedSerializer,
    WebhookEndpointInputSerializer,
    WebhookEndpointPatchSerializer,
    WebhookEndpointSerializer,
)

ENDPOINT_ERRORS = "400 ``invalid_url``, ``unknown_event_type``, ``too_many_endpoints`` or ``invalid``."


@extend_schema_view(
    list=extend_schema(description="The merchant's webhook endpoints (secrets are never listed)."),
    retrieve=extend_schema(description="One endpoint (its secret is not shown again)."),
)
class WebhookEndpointViewSet(MerchantScopedViewSet):
    """Endpoints that receive signed POSTs for the events they pick."""

    queryset = WebhookEndpoint.objects.none()
    role_area = roles.INTEGRATIONS  # owner tokens only, reads included
    selector = staticmethod(selectors.endpoint_list)
    serializer_class = WebhookEndpointSerializer

    @extend_schema(
        request=WebhookEndpointInputSerializer,
        responses={201: WebhookEndpointCreatedSerializer, **error_responses(400, 401)},
        description="Register an endpoint. The answer carries its signing `secret`, shown only this once. "
        + ENDPOINT_ERRORS,
    )
    def create(self, request: Request) -> Response:
        s = WebhookEndpointInputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        endpoint = services.endpoint_create(
            merchant_id=self.merchant_id,
            url=s.validated_data["url"],
            events=s.validated_data["events"],
            description=s.validated_data["description"],
        )
        if not s.validated_data["is_active"]:
            endpoint = services.endpoint_update(endpoint=endpoint, is_active=False)
        return Response(WebhookEndpointCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=WebhookEndpointPatchSerializer,
        responses={200: WebhookEndpointSerializer, **error_responses(400, 401, 404)},
        description="Change an endpoint's url, events, description or is_active. " + ENDPOINT_ERRORS,
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        endpoint = self.get_object()
        s = WebhookEndpointPatchSerializer(data=request.data, partial=True)
        s.is_valid(raise_exception=True)
        endpoint = services.endpoint_update(endpoint=endpoint, **s.validated_data)
        return Response(WebhookEndpointSerializer(endpoint).data)

    @extend_schema(responses={204: None, **error_responses(401, 404)}, description="Delete an endpoint and its log.")
    def destroy(self, request: Request, pk: str) -> Response:
        services.endpoint_delete(endpoint=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses={200: WebhookEndpointCreatedSerializer, **error_responses(401, 404)},
        description="Replace the signing secret; the answer shows the new one, only this once. "
        "Every request from now on (retries too) is signed with it.",
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str) -> Response:
        endpoint = services.endpoint_rotate_secret(endpoint=self.get_object())
        return Response(WebhookEndpointCreatedSerializer(endpoint).data)


class DeliveryFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=DeliveryStatus.choices)
    event_type = filters.ChoiceFilter(field_name="event__type", choices=EventType.choices)

    class Meta:
        model = WebhookDelivery
        fields = ["endpoint", "status"]


@extend_schema_view(
    list=extend_schema(
        description="The delivery log, newest first: each event sent to each endpoint, its status "
        "(pending, failed = retrying, succeeded, abandoned), the last response and every attempt."
    ),
    retrieve=extend_schema(description="One delivery with its attempts."),
)
class WebhookDeliveryViewSet(MerchantScopedViewSet):
    queryset = WebhookDelivery.objects.none()
    role_area = roles.INTEGRATIONS
    selector = staticmethod(selectors.delivery_list)
    serializer_class = WebhookDeliverySerializer
    filterset_class = DeliveryFilter

    @extend_schema(
        request=None,
        responses={200: WebhookDeliverySerializer, **error_responses(401, 404)},
        description="Send the delivery's event to its endpoint again now, as a new attempt (logged as a "
        "replay), whatever its status. Success marks it succeeded; a failure leaves its retry schedule.",
    )
    @action(detail=True, methods=["post"])
    def replay(self, request: Request, pk: str) -> Response:
        delivery = services.delivery_replay(delivery=self.get_object())
        fresh = selectors.delivery_list(merchant_id=self.merchant_id).get(pk=delivery.pk)
        return Response(WebhookDeliverySerializer(fresh).data)
