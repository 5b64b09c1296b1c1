"""Small shared API pieces: merchant-scoped relations, the JSON parser, date-times, the error shape."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser as DRFJSONParser

from .datetimes import DATE_RANGE_MESSAGE, RANGE_MESSAGE, in_range


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A foreign key that only accepts the requesting merchant's objects (others: 'does not exist')."""

    def get_queryset(self) -> Any:
        qs = super().get_queryset()
        if qs is None:  # a read-only field: nothing to scope
            return qs
        request = self.context.get("request")
        merchant_id = getattr(getattr(request, "auth", None), "merchant_id", None)
        return qs.filter(merchant_id=merchant_id) if merchant_id else qs.none()


class JSONParser(DRFJSONParser):
    """DRF's JSON parser, with too deeply nested input a 400 like any other malformed JSON
    (the stdlib decoder raises RecursionError, which DRF lets through as a 500)."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None


class DateTimeField(serializers.DateTimeField):
    """A date-time a show or a sale can have: years 2000-2099 in UTC (``apps.core.datetimes``).
    Every date-time input field of the API is this one."""

    default_error_messages = {"out_of_range": RANGE_MESSAGE}

    def to_internal_value(self, value: Any) -> datetime:
        parsed = super().to_internal_value(value)
        if not in_range(parsed):
            self.fail("out_of_range")
        return parsed


class DateField(serializers.DateField):
    """A day a show or a sale can be on: years 2000-2099 (``apps.core.datetimes``), so that the day's
    start in any time zone is a date-time the system can compute with."""

    default_error_messages = {"out_of_range": DATE_RANGE_MESSAGE}

    def to_internal_value(self, value: Any) -> date:
        parsed = super().to_internal_value(value)
        if not in_range(datetime.combine(parsed, time.min)):
            self.fail("out_of_range")
        return parsed


ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "code": serializers.CharField(),
        "message": serializers.CharField(),
        "extra": serializers.DictField(),
    },
)


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """Generic error responses for ``extend_schema(responses=...)``. The schema hook
    (``apps.core.openapi``) replaces every 4xx/5xx of every endpoint with what
    ``apps.core.error_codes.ENDPOINT_ERRORS`` declares, so declaring them in a view is optional:
    what documents an endpoint's errors is its line there."""
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
