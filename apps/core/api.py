"""Small shared API pieces: merchant-scoped relations and documented error responses."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A foreign key that only accepts the requesting merchant's objects (others: 'does not exist')."""

    def get_queryset(self) -> Any:
        qs = super().get_queryset()
        request = self.context.get("request")
        merchant_id = getattr(getattr(request, "auth", None), "merchant_id", None)
        return qs.filter(merchant_id=merchant_id) if merchant_id else qs.none()


ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "code": serializers.CharField(),
        "message": serializers.CharField(),
        "extra": serializers.DictField(),
    },
)


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    text = {
        400: "Invalid input",
        401: "Missing, invalid or revoked token",
        403: "Not allowed",
        404: "Not found (or another merchant's)",
        409: "Conflict with the current state",
        415: "Unsupported media type",
        422: "Unprocessable",
    }
    return {s: OpenApiResponse(ErrorSerializer, description=text.get(s, "Error")) for s in statuses}


STANDARD_ERRORS = (400, 401, 404)
