"""OpenAPI description of the merchant token (so the docs page and clients know it).

The server takes ``Authorization: Bearer <token>`` and ``Authorization: Token <token>`` alike
(``authentication.token_from_header``). The schema declares the HTTP bearer scheme: Swagger UI's
Authorize dialog then takes the raw token as pasted and sends ``Bearer <token>`` itself
(an ``apiKey`` scheme would send what was pasted, so a bare token would fail).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class MerchantTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.merchants.authentication.MerchantTokenAuthentication"
    name = "MerchantToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "A merchant's API token (`manage.py createmerchant`, or admin → API tokens). In Swagger "
                "UI's Authorize dialog paste the token alone. Clients send `Authorization: Bearer <token>` "
                "(`Authorization: Token <token>` is accepted too)."
            ),
        }
