"""The OpenAPI schema's error responses, drawn from ``apps.core.error_codes`` (a drf-spectacular
postprocessing hook, ``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``).

For every operation the hook replaces whatever 4xx/5xx responses the views declared with the ones
``ENDPOINT_ERRORS`` declares: one response per status, whose schema is the ``Error`` component
narrowed to exactly the codes the endpoint answers with that status (an enum), with a real
example body for each code. It also adds one ``<OperationId>Error`` component per operation (its
``code`` an enum of every code the endpoint answers), and lists in the API description the codes
answered before any endpoint (a refused host, a method a path does not have).
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from drf_spectacular.drainage import warn

from .error_codes import ENDPOINT_ERRORS, ERROR_CODES, REQUEST_LEVEL, endpoint_codes

PREFIX = "/api/v1"
_METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every error: a stable `code` to match on, a `message` for people, details in `extra`.",
    "properties": {
        "code": {"type": "string", "description": "Machine-readable, the same in every language (docs/api.md)."},
        "message": {
            "type": "string",
            "description": "For people: English, or Chinese with `Accept-Language: zh-hans`.",
        },
        "extra": {
            "type": "object",
            "additionalProperties": {},
            "description": "Details, by code (`fields` maps each bad field to what is wrong with it).",
        },
    },
    "required": ["code", "message", "extra"],
}

_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "schema": {"type": "string"},
            "description": "`Token` for a token endpoint (`Bearer` is accepted too).",
        }
    },
    503: {
        "Retry-After": {
            "schema": {"type": "integer"},
            "description": "Seconds to wait before retrying (nothing was changed).",
        }
    },
}


def component_name(operation_id: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", operation_id)) + "Error"


def error_response(status: int, codes: list[str], component: str) -> dict[str, Any]:
    """The documented answer of one status: its codes, a schema allowing exactly them, examples."""
    schema = {
        "allOf": [
            {"$ref": f"#/components/schemas/{component}"},
            {"type": "object", "properties": {"code": {"type": "string", "enum": codes}}},
        ]
    }
    examples = {code: {"summary": ERROR_CODES[code].when, "value": ERROR_CODES[code].example(code)} for code in codes}
    out: dict[str, Any] = {
        "description": f"{HTTPStatus(status).phrase}: " + ", ".join(f"`{c}`" for c in codes),
        "content": {"application/json": {"schema": schema, "examples": examples}},
    }
    if status in _HEADERS:
        out["headers"] = _HEADERS[status]
    return out


def _takes_token(operation: dict[str, Any]) -> bool:
    return any(requirement for requirement in operation.get("security", []))


def error_responses_hook(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    seen: set[str] = set()
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            endpoint = f"{method.upper()} {path.removeprefix(PREFIX)}"
            seen.add(endpoint)
            if endpoint not in ENDPOINT_ERRORS:
                warn(f"{endpoint} has no entry in apps.core.error_codes.ENDPOINT_ERRORS: only the common codes")
            codes = endpoint_codes(endpoint, takes_token=_takes_token(operation))
            component = component_name(operation["operationId"])
            schemas[component] = {
                "allOf": [
                    {"$ref": "#/components/schemas/Error"},
                    {"type": "object", "properties": {"code": {"type": "string", "enum": codes}}},
                ],
                "description": f"An error `{method.upper()} {path}` answers.",
            }
            responses = {k: v for k, v in operation.get("responses", {}).items() if int(k) < 400}
            for status in sorted({ERROR_CODES[c].status for c in codes}):
                at_status = [c for c in codes if ERROR_CODES[c].status == status]
                responses[str(status)] = error_response(status, at_status, component)
            operation["responses"] = responses
    for endpoint in sorted(set(ENDPOINT_ERRORS) - seen):
        warn(f"ENDPOINT_ERRORS names {endpoint}, which the schema does not have")
    info = result.setdefault("info", {})
    before = "\n".join(
        f"- {ERROR_CODES[c].status} `{c}` ({ERROR_CODES[c].where}): {ERROR_CODES[c].when}" for c in REQUEST_LEVEL
    )
    info["description"] = (
        info.get("description", "") + "\n\n**Answered before any endpoint** (so not listed under one):\n\n" + before
    )
    return result
