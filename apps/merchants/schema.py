"""OpenAPI description of ``Authorization: Token <token>`` (so the docs page and clients know it)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class MerchantTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.merchants.authentication.MerchantTokenAuthentication"
    name = "MerchantToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "A merchant's API token: `Token <token>` (see `manage.py createmerchant`).",
        }
