from typing import Any

from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        """DRF's page schema, with examples of this API's links (the schema's list examples use them)."""
        out = super().get_paginated_response_schema(schema)
        props = out["properties"]
        props["count"]["example"] = 120
        props["next"]["example"] = "https://shop.example.com/api/v1/orders?page=3&page_size=50"
        props["previous"]["example"] = "https://shop.example.com/api/v1/orders?page=1&page_size=50"
        return out
