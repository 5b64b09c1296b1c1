"""Shared bits of the back-office order tests: staff clients and order bodies with a chosen
buyer, phone and address."""

from __future__ import annotations

from django.test import Client

from apps.merchants import services as merchants


def staff_client(merchant, name: str = "mei", language: str = "en") -> Client:  # type: ignore[no-untyped-def]
    c = Client(HTTP_ACCEPT_LANGUAGE=language)
    c.force_login(merchants.staff_create(merchant=merchant, username=name, password="pw-123456789"))
    return c


def body(
    *,
    buyer: str,
    name: str = "王小明",
    phone: str = "13800000000",
    province: str = "浙江省",
    city: str = "杭州市",
    district: str = "西湖区",
    detail: str = "文三路 1 号",
) -> dict:
    return {
        "listing": 0,  # make_order sets it
        "quantity": 1,
        "buyer": {"external_id": buyer, "name": name, "phone": phone},
        "shipping_address": {
            "name": name,
            "phone": phone,
            "province": province,
            "city": city,
            "district": district,
            "detail": detail,
        },
    }


def listed(response) -> list[str]:  # type: ignore[no-untyped-def]
    """The order numbers the changelist shows (every row of the page)."""
    return [o.public_id for o in response.context["cl"].result_list]
