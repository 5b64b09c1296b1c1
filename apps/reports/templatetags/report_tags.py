from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template

from ..exports import channel_name

register = template.Library()


@register.filter
def percent(value: object) -> str:
    """A share as a decimal string ("0.8125") shown as a percentage ("81.3%")."""
    try:
        return f"{(Decimal(str(value)) * 100).quantize(Decimal('0.1'))}%"
    except (InvalidOperation, ValueError):
        return "—"


@register.filter
def index(sequence: object, i: int) -> object:
    """``sequence[i]`` in a template (a weekday's name by its number)."""
    try:
        return sequence[i]  # type: ignore[index]
    except (IndexError, TypeError, KeyError):
        return ""


@register.filter
def channel(code: str) -> str:
    """A sales channel's name for people ("douyin" → 抖音 in zh-hans)."""
    return channel_name(code)
