"""The error codes: one registry of every ``code`` the system answers in ``{code, message, extra}``,
and one declared mapping of API endpoint -> the codes it can answer.

- ``ERROR_CODES`` says, for each code, its HTTP status, when it happens, what ``extra`` carries and
  a real example body. ``docs/api.md``'s reference table is rendered from it (``markdown_table``;
  ``tests/core/test_openapi_contract.py`` fails when the two differ, and when a code raised
  anywhere in ``apps/`` is missing here).
- ``ENDPOINT_ERRORS`` maps ``"METHOD /path"`` (as in the schema, without ``/api/v1``) to the codes
  that endpoint answers. The OpenAPI hook (``apps.core.openapi``) turns it into the documented
  error responses: one per status, its ``code`` an enum of exactly those codes, one example each.
  Every endpoint also answers ``COMMON``, and every endpoint that takes a merchant token ``TOKEN``.

A new endpoint adds one line to ``ENDPOINT_ERRORS``; a new code adds one entry to ``ERROR_CODES``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ErrorCode:
    status: int
    when: str
    message: str  # the real message of a typical case (the example body's)
    extra: dict[str, Any] = field(default_factory=dict)  # the example body's extra
    extra_keys: tuple[str, ...] = ()  # every key ``extra`` may carry for this code
    where: str = ""  # "" = answered by API endpoints; else where it is answered instead

    def example(self, code: str) -> dict[str, Any]:
        return {"code": code, "message": self.message, "extra": self.extra}


_FIELDS = {"fields": {"quantity": "Must be between 1 and 1000."}}

ERROR_CODES: dict[str, ErrorCode] = {
    # --- 400 --------------------------------------------------------------------------------
    "invalid": ErrorCode(
        400,
        "a body field or a filter value is wrong (type, range, length, a date-time outside 2000–2099, "
        "a phone that is not one); a rule across fields names its `field`",
        "quantity: Must be between 1 and 1000.",
        _FIELDS,
        ("fields", "field"),
    ),
    "malformed_request": ErrorCode(
        400, "the body is not JSON (or nests too deep, or holds NaN/Infinity)", "JSON parse error."
    ),
    "invalid_idempotency_key": ErrorCode(
        400,
        "`Idempotency-Key` is not 1–100 printable ASCII characters",
        "Idempotency-Key must be 1-100 printable ASCII characters",
    ),
    "invalid_url": ErrorCode(
        400,
        "a webhook endpoint's URL is not https, is malformed or points at a private address; a platform shop's "
        "or a carrier account's `api_base_url` is not an http(s) URL (`field` names it)",
        "url: must use https://",
        extra_keys=("field",),
    ),
    "invalid_msg_secret": ErrorCode(
        400,
        "a Kuaishou shop without `msg_secret`, or one that is not the base64 of a 16, 24 or 32-byte AES key",
        "msg_secret must be the base64 of a 16, 24 or 32-byte AES key (Kuaishou's message secret)",
        {"field": "msg_secret"},
        ("field",),
    ),
    "allocation_exceeds_quota": ErrorCode(
        400,
        "a listing's channels allocate more units in all than its quota",
        "the channels' allocated units (320) exceed the listing's quota (300)",
        {"field": "units", "quota": 300, "allocated": 320},
        ("field", "quota", "allocated"),
    ),
    "unknown_event_type": ErrorCode(
        400,
        "a webhook endpoint names an event type that does not exist (or none)",
        "unknown event types: order.teleported",
        {"unknown": ["order.teleported"], "allowed": ["listing.sold_out", "order.paid"]},
        ("unknown", "allowed"),
    ),
    "too_many_endpoints": ErrorCode(
        400, "a merchant already has 16 webhook endpoints", "at most 16 endpoints per merchant"
    ),
    "unknown_parameter": ErrorCode(
        400,
        "a list got a query parameter it does not know (a misspelt filter is never ignored)",
        "unknown query parameter 'staus'",
        {"fields": {"staus": "Unknown parameter."}, "allowed": ["page", "page_size", "status"]},
        ("fields", "allowed"),
    ),
    "invalid_cursor": ErrorCode(
        400,
        "`/orders/changes` got a cursor it did not give out",
        "cursor: not a cursor this endpoint gave out",
        {"fields": {"cursor": "Invalid."}},
        ("fields",),
    ),
    "quota_exceeds_supply": ErrorCode(
        400,
        "a listing's quota is more than its SKU can still supply",
        "quota 500 exceeds what the SKU can supply (120)",
        {"field": "quota", "supply": 120},
        ("field", "supply"),
    ),
    "invalid_stock_change": ErrorCode(
        400,
        "a stock correction is malformed (zero, no reason, a receipt that removes stock)",
        "a receipt adds stock: delta must be positive",
        {"field": "delta"},
        ("field",),
    ),
    "stock_limit": ErrorCode(
        400,
        "on hand would leave 0–10,000,000",
        "on hand cannot exceed 10000000 units",
        {"field": "delta", "on_hand": 9999990, "max": 10000000},
        ("field", "on_hand", "max"),
    ),
    "duplicate_code": ErrorCode(
        400,
        "a SKU code already used by this merchant",
        "SKU code 'LIP-RED-01' already exists",
        {"field": "code"},
        ("field",),
    ),
    # --- 401 --------------------------------------------------------------------------------
    "not_authenticated": ErrorCode(401, "no `Authorization` header", "Authentication credentials were not provided."),
    "authentication_failed": ErrorCode(
        401,
        "the token is malformed, unknown or revoked (send `Bearer <token>` or `Token <token>`)",
        "Invalid or revoked token.",
    ),
    "signature_invalid": ErrorCode(
        401,
        "a payment notification's `X-Signature` does not verify (or a header is missing)",
        "signature does not match",
    ),
    "timestamp_stale": ErrorCode(
        401,
        "a payment notification's `X-Timestamp` is more than 5 minutes off",
        "X-Timestamp is more than 5 minutes away from now",
        {"timestamp": 1767225600},
        ("timestamp",),
    ),
    # --- 404 --------------------------------------------------------------------------------
    "not_found": ErrorCode(
        404,
        "no such object for this merchant (another merchant's id is a 404 too), or a page past the end",
        "Not found.",
    ),
    "report_not_ready": ErrorCode(
        404,
        "a show whose report the rollup has not computed yet (it is asked for: try again in a minute)",
        "This show's report is being computed; try again in a minute.",
    ),
    "listing_not_found": ErrorCode(
        404,
        "an order names a listing this merchant does not have",
        "no such listing",
        {"listing": 42},
        ("listing",),
    ),
    "order_not_found": ErrorCode(
        404,
        "a payment notification names an order that does not exist",
        "no such order",
        {"order": "Xq3f9KpL2m"},
        ("order",),
    ),
    # --- 406 --------------------------------------------------------------------------------
    "not_acceptable": ErrorCode(
        406,
        "`Accept` asks for something other than JSON",
        "Could not satisfy the request Accept header.",
    ),
    # --- 403 --------------------------------------------------------------------------------
    "insufficient_role": ErrorCode(
        403,
        "the token's role may not do this: writes need an operator or owner token (cancelling an order: "
        "customer service too), webhook endpoints and deliveries and platform shops an owner token; other reads "
        "are open to every role",
        "The analyst role may not add orders; this needs one of: owner, operator.",
        {"role": "analyst", "area": "orders", "action": "add", "roles_allowed": ["owner", "operator"]},
        ("role", "area", "action", "roles_allowed"),
    ),
    "risk_blocked": ErrorCode(
        403,
        "the merchant's risk rules refused this attempt (nothing was held or placed); `reasons` are the "
        "rule codes that fired (see docs/fraud.md); a retry with the same Idempotency-Key gets the same answer",
        "this order was refused by the merchant's risk rules",
        {"listing": 42, "reasons": ["early_attempts", "script_client"]},
        ("listing", "reasons"),
    ),
    # --- 409 --------------------------------------------------------------------------------
    "sold_out": ErrorCode(
        409, "not enough units left for this order", "sold out", {"listing": 42, "left": 0}, ("listing", "left")
    ),
    "over_buyer_limit": ErrorCode(
        409,
        "the quantity would take the buyer over the listing's per-buyer limit (checked before `sold_out`)",
        "over the per-buyer limit",
        {"listing": 42, "limit": 2, "held": 2},
        ("listing", "limit", "held"),
    ),
    "listing_closed": ErrorCode(
        409,
        "the listing is not open now (not started, ended or closed)",
        "this listing is not open",
        {"listing": 42},
        ("listing",),
    ),
    "invalid_transition": ErrorCode(
        409,
        "the order cannot go to that status from where it is",
        "cannot go from shipped to cancelled",
        {"from": "shipped", "to": "cancelled", "order": "Xq3f9KpL2m"},
        ("from", "to", "order"),
    ),
    "insufficient_stock": ErrorCode(
        409,
        "stock cannot go below what live orders hold (in a stock sync: that SKU's result, status `conflict`, in a 200)",
        "on hand cannot go below the 30 units reserved by orders",
        {"on_hand": 40, "reserved": 30},
        ("on_hand", "reserved"),
    ),
    "shop_exists": ErrorCode(
        409,
        "the merchant already connected this platform shop, or it is connected and enabled elsewhere (a "
        "platform's shop feeds one enabled connection)",
        "this Douyin shop 1234567 is already connected",
        {"field": "shop_id", "platform": "douyin", "shop_id": "1234567"},
        ("field", "platform", "shop_id"),
    ),
    "session_ended": ErrorCode(409, "the show has ended and cannot change", "an ended show cannot be changed"),
    "invalid_listing_state": ErrorCode(
        409, "the listing is closed and cannot change or reopen", "a closed listing cannot be changed"
    ),
    "allocation_conflict": ErrorCode(
        409,
        "a platform's allocated units cannot be set so: units sold cannot move back, and units moved to a "
        "platform must be unsold in the listing's shared part; `least` and `most` bound what `platform` may get now",
        "douyin can be allocated 12 to 40 units now (sold units stay; the shared part has 28 unsold)",
        {"field": "units", "platform": "douyin", "least": 12, "most": 40},
        ("field", "platform", "least", "most"),
    ),
    "unknown_orders": ErrorCode(
        400,
        "a shipping batch names orders that are not the merchant's (the first 100 in `orders`)",
        "Some orders do not exist.",
        {"orders": ["LC8F3K2M9X"]},
        ("orders",),
    ),
    "nothing_to_ship": ErrorCode(
        400,
        "a shipping batch of a show that has no confirmed orders",
        "There is nothing to ship.",
    ),
    "batch_too_large": ErrorCode(
        400,
        "a shipping batch of more orders than one batch takes (`max`)",
        "At most 20000 orders in one batch.",
        {"max": 20000},
        ("max",),
    ),
    "not_confirmed": ErrorCode(
        409,
        "a shipping batch names orders that are not confirmed (not paid yet, held, cancelled or shipped already; "
        "the first 100 in `orders`)",
        "Only confirmed orders can be shipped.",
        {"orders": ["LC8F3K2M9Q"]},
        ("orders",),
    ),
    "already_in_batch": ErrorCode(
        409,
        "a shipping batch names orders that are in a batch still running (the first 100 in `orders`)",
        "Some orders are in a batch that is still running.",
        {"orders": ["LC8F3K2M9Q"]},
        ("orders",),
    ),
    "no_carrier_account": ErrorCode(
        409,
        "a shipping batch without a carrier account to draw waybills on (no enabled default account)",
        "Set up a carrier account (and make it the default) before shipping.",
    ),
    "not_ready": ErrorCode(
        404,
        "a shipping batch's file asked for before the batch has written it",
        "The batch has no such file yet.",
    ),
    "refund_not_allowed": ErrorCode(
        409,
        "a refund request for an order that cannot be refunded now (not paid yet, cancelled, refunded already), "
        "or a return of an order that has not shipped",
        "Nothing has shipped yet: ask for a refund, not a return.",
        {"status": "paid"},
        ("status",),
    ),
    "refund_on_platform": ErrorCode(
        409,
        "a refund request for an order a sales platform sold (the buyer asks on the platform), or a decision "
        "on a platform's request (approve, reject, withdraw): the platform decides, and its answer comes back",
        "This order was sold on douyin: the buyer asks for a refund there.",
    ),
    "refund_open": ErrorCode(
        409,
        "a refund request for an order that has one in progress (`refund` names it)",
        "This order has a refund request in progress (RF3C9A0E1B77D24F10).",
        {"refund": "RF3C9A0E1B77D24F10"},
        ("refund",),
    ),
    "nothing_to_refund": ErrorCode(
        409,
        "a refund request for an order whose whole amount (or, for a return, every unit) is refunded or being refunded",
        "This order's whole amount is refunded or being refunded.",
    ),
    "refund_state": ErrorCode(
        409,
        "a refund step the request is not at (approve a request already decided, receive goods of a refund alone, "
        "send again one that did not fail)",
        "Refund RF3C9A0E1B77D24F10 is Refunded: it cannot take this step.",
        {"status": "refunded"},
        ("status",),
    ),
    "refund_not_found": ErrorCode(
        404,
        "a signed refund callback names a refund number we never sent",
        "No refund with this number.",
        where="the payment provider's refund callback (`POST /hooks/payments/refunds`)",
    ),
    "transaction_id_reused": ErrorCode(
        409,
        "a payment transaction id already used for another order",
        "this transaction id was already used for another order",
    ),
    "ledger_unverifiable": ErrorCode(
        409,
        "the order's ledger does not verify, so no proof is published (the merchant is alerted)",
        "this order's ledger does not verify; the merchant has been alerted",
        where="the buyer's ledger proof download (`/o/{id}/proof.json`)",
    ),
    "merchant_exists": ErrorCode(
        409, "`createmerchant` with a slug in use", "merchant 'acme' already exists", where="`manage.py createmerchant`"
    ),
    # --- 413 / 415 / 422 --------------------------------------------------------------------
    "payload_too_large": ErrorCode(
        413,
        "an order or payment notification body over 64 KiB",
        "The body is larger than 64 KiB.",
        {"max_bytes": 65536},
        ("max_bytes",),
    ),
    "unsupported_media_type": ErrorCode(
        415,
        "a body that is not `application/json`",
        'Unsupported media type "text/plain" in request.',
    ),
    "idempotency_key_reused": ErrorCode(
        422,
        "the `Idempotency-Key` (or a stock sync's `sync_id`) was used with a different body",
        "this Idempotency-Key was used with a different request body",
        extra_keys=("sync_id",),
    ),
    "amount_mismatch": ErrorCode(
        422,
        "a payment's amount differs from the order total (recorded, refused, owed back)",
        "amount differs from the order total",
        {"total": "99.00", "amount": "9.90"},
        ("total", "amount"),
    ),
    # --- 503 --------------------------------------------------------------------------------
    "temporarily_unavailable": ErrorCode(
        503,
        "the database is busy or unreachable, or an order batch could not answer in time: nothing was "
        "changed (or, for an order, retry with the same `Idempotency-Key` to learn its outcome); "
        "honour `Retry-After`",
        "the database is busy or unreachable; nothing was changed — please retry",
    ),
    # --- answered before any endpoint: a request Django refuses, a method a path does not have --
    "bad_request": ErrorCode(
        400,
        "Django refused the request before any endpoint saw it (a `Host` not allowed, a body over 2.5 MB)",
        "Bad Request.",
        where="any path under `/api`",
    ),
    "bad_host": ErrorCode(
        400,
        "`POST /orders` with a `Host` not allowed (the order fast path's answer to what is `bad_request` elsewhere)",
        "Invalid Host header.",
        where="`POST /orders`, before authentication",
    ),
    "method_not_allowed": ErrorCode(
        405,
        "the path exists, the method does not (`Allow` lists the ones it has)",
        'Method "PUT" not allowed.',
        where="any path under `/api`",
    ),
    "server_error": ErrorCode(
        500, "a bug: nothing should answer it; report it with the `X-Request-ID`", "Internal error.", where="anywhere"
    ),
    # --- back office -----------------------------------------------------------------------
    "unknown_role": ErrorCode(
        400,
        "a staff login or token was given a role that does not exist (`owner`, `operator`, "
        "`customer_service`, `analyst`)",
        "unknown role 'admin'",
        {"role": "admin", "roles": ["owner", "operator", "customer_service", "analyst"]},
        ("role", "roles"),
        where="`manage.py createmerchant`, the admin",
    ),
    "username_taken": ErrorCode(
        409,
        "an owner adds a staff member with a username already in use",
        "this username is taken; pick another",
        {"field": "username"},
        ("field",),
        where="the admin (Memberships)",
    ),
    "last_owner": ErrorCode(
        409,
        "the merchant's last owner would be demoted or removed",
        "a merchant keeps at least one owner",
        where="the admin (Memberships)",
    ),
    "read_only": ErrorCode(
        400,
        "an admin page's inline rows were edited (they are read-only there)",
        "rows cannot be edited here; open them on their own page",
        where="the admin (shown as a message)",
    ),
    "unknown_sku": ErrorCode(
        200,
        "a stock sync item names no SKU of this merchant (another merchant's code too)",
        "no SKU with code 'TEA-404' in this shop",
        where="a stock sync's per-SKU result (status `error`; the other SKUs apply)",
    ),
    "note_invalid": ErrorCode(
        400,
        "an order note is empty or longer than 500 characters",
        "A note cannot be empty.",
        {"field": "text"},
        ("field",),
        where="the admin's order page (shown as a message)",
    ),
    "flag_invalid": ErrorCode(
        400,
        "an order flag is not one of the colours",
        "Unknown flag colour.",
        {"field": "colour", "allowed": ["none", "red", "orange", "green", "blue", "purple"]},
        ("field", "allowed"),
        where="the admin's order page (shown as a message)",
    ),
    "duplicate_variant": ErrorCode(
        400,
        "another SKU of the product already has this colour and size",
        "this product already has a SKU in colour 红色, size M",
        {"field": "color"},
        ("field",),
    ),
    "invalid_image": ErrorCode(
        400, "an uploaded picture is not an image", "This file is not an image.", where="the admin (a form error)"
    ),
    "image_format": ErrorCode(
        400,
        "a picture is not JPEG, PNG, WebP or GIF",
        "Upload a JPEG, PNG, WebP or GIF.",
        where="the admin (a form error)",
    ),
    "image_too_large": ErrorCode(
        400, "a picture is over 5 MB", "A picture may be at most 5 MB.", where="the admin (a form error)"
    ),
    "image_dimensions": ErrorCode(
        400,
        "a picture is over 8000 px a side",
        "A picture may be at most 8000 px a side.",
        where="the admin (a form error)",
    ),
}
"""Every error code, by code. ``where`` is empty for codes API endpoints answer."""

# --- which endpoint answers which codes -------------------------------------------------------
COMMON = ("not_acceptable", "temporarily_unavailable")
"""Every endpoint: DRF's content negotiation, and a database that does not answer in time."""
TOKEN = ("not_authenticated", "authentication_failed")
"""Every endpoint that takes a merchant token."""
REQUEST_LEVEL = ("bad_request", "bad_host", "method_not_allowed", "server_error")
"""Answered before any endpoint sees the request (listed in the schema's description instead)."""

_LIST = ("invalid", "unknown_parameter", "not_found")  # a bad filter, an unknown one, a page past the end
_BODY = ("invalid", "malformed_request", "unsupported_media_type")  # a JSON body through DRF's parser
_PATCH = ("not_found", *_BODY)

ENDPOINT_ERRORS: dict[str, tuple[str, ...]] = {
    "GET /products": _LIST,
    "POST /products": _BODY,
    "GET /products/{id}": ("not_found",),
    "PATCH /products/{id}": _PATCH,
    "GET /skus": _LIST,
    "POST /skus": (*_BODY, "duplicate_code", "duplicate_variant"),
    "GET /skus/{id}": ("not_found",),
    "PATCH /skus/{id}": (*_PATCH, "duplicate_code", "duplicate_variant", "insufficient_stock"),
    "POST /skus/{id}/stock": (*_PATCH, "invalid_stock_change", "stock_limit", "insufficient_stock"),
    "GET /sessions": _LIST,
    "POST /sessions": _BODY,
    "GET /sessions/{id}": ("not_found",),
    "PATCH /sessions/{id}": (*_PATCH, "session_ended"),
    "POST /sessions/{id}/start": ("not_found", "session_ended"),
    "POST /sessions/{id}/end": ("not_found",),
    "GET /listings": _LIST,
    "POST /listings": (*_BODY, "quota_exceeds_supply", "session_ended"),
    "GET /listings/{id}": ("not_found",),
    "PATCH /listings/{id}": (*_PATCH, "quota_exceeds_supply", "invalid_listing_state"),
    "POST /listings/{id}/open": ("not_found", "session_ended", "invalid_listing_state"),
    "POST /listings/{id}/close": ("not_found",),
    "POST /orders": (
        "invalid",
        "malformed_request",
        "invalid_idempotency_key",
        "unsupported_media_type",
        "payload_too_large",
        "listing_not_found",
        "risk_blocked",
        "sold_out",
        "over_buyer_limit",
        "listing_closed",
        "idempotency_key_reused",
    ),
    "GET /orders": _LIST,
    "GET /orders/changes": ("invalid", "unknown_parameter", "invalid_cursor"),
    "GET /orders/{id}": ("not_found",),
    "POST /orders/{id}/cancel": (*_PATCH, "invalid_transition"),
    "GET /webhook-endpoints": _LIST,
    "POST /webhook-endpoints": (*_BODY, "invalid_url", "unknown_event_type", "too_many_endpoints"),
    "GET /webhook-endpoints/{id}": ("not_found",),
    "PATCH /webhook-endpoints/{id}": (*_PATCH, "invalid_url", "unknown_event_type"),
    "DELETE /webhook-endpoints/{id}": ("not_found",),
    "POST /webhook-endpoints/{id}/rotate-secret": ("not_found",),
    "GET /webhook-deliveries": _LIST,
    "GET /webhook-deliveries/{id}": ("not_found",),
    "POST /webhook-deliveries/{id}/replay": ("not_found",),
    "GET /platform-shops": _LIST,
    "POST /platform-shops": (*_BODY, "invalid_msg_secret", "invalid_url", "shop_exists"),
    "GET /platform-shops/{id}": ("not_found",),
    "PATCH /platform-shops/{id}": (*_PATCH, "invalid_msg_secret", "invalid_url", "shop_exists"),
    "DELETE /platform-shops/{id}": ("not_found",),
    "GET /platform-shops/{id}/sku-mappings": ("not_found",),
    "POST /platform-shops/{id}/sku-mappings": _PATCH,
    "DELETE /platform-shops/{id}/sku-mappings": ("not_found", "invalid"),
    "GET /carrier-accounts": _LIST,
    "POST /carrier-accounts": (*_BODY, "invalid_url"),
    "GET /carrier-accounts/{id}": ("not_found",),
    "PATCH /carrier-accounts/{id}": (*_PATCH, "invalid_url"),
    "DELETE /carrier-accounts/{id}": ("not_found",),
    "GET /shipments/batches": _LIST,
    "POST /shipments/batches": (
        *_BODY,
        "not_found",
        "unknown_orders",
        "nothing_to_ship",
        "batch_too_large",
        "not_confirmed",
        "already_in_batch",
        "no_carrier_account",
    ),
    "GET /shipments/batches/{id}": ("not_found",),
    "GET /shipments/batches/{id}/{file}": ("not_found", "not_ready"),
    "GET /refunds": _LIST,
    "GET /reports/sessions": _LIST,
    "GET /reports/slots": ("invalid", "unknown_parameter"),
    "GET /reports/forecast": ("invalid", "unknown_parameter"),
    "GET /reports/suggestions": ("invalid", "unknown_parameter"),
    "GET /reports/sessions/{id}": ("not_found", "report_not_ready"),
    "POST /refunds": (
        *_BODY,
        "not_found",
        "invalid_idempotency_key",
        "idempotency_key_reused",
        "refund_not_allowed",
        "refund_on_platform",
        "refund_open",
        "nothing_to_refund",
        "invalid_transition",
    ),
    "GET /refunds/{id}": ("not_found",),
    "POST /refunds/{id}/approve": (*_PATCH, "refund_state", "refund_on_platform", "invalid_transition"),
    "POST /refunds/{id}/reject": (*_PATCH, "refund_state", "refund_on_platform"),
    "POST /refunds/{id}/receive": ("not_found", "refund_state", "invalid_transition", "invalid_stock_change"),
    "POST /refunds/{id}/withdraw": ("not_found", "refund_state", "refund_on_platform"),
    "GET /listings/{id}/channels": ("not_found",),
    "PUT /listings/{id}/channels": (
        *_PATCH,
        "allocation_exceeds_quota",
        "allocation_conflict",
        "invalid_listing_state",
    ),
    "POST /stock/sync": (*_BODY, "idempotency_key_reused"),
    "POST /payments/notify": (
        "signature_invalid",
        "timestamp_stale",
        "malformed_request",
        "invalid",
        "payload_too_large",
        "order_not_found",
        "transaction_id_reused",
        "amount_mismatch",
    ),
}
"""Endpoint -> the codes it answers besides ``COMMON`` (and ``TOKEN`` where a token is needed)."""


OWNER_READS = (
    "GET /webhook-endpoints",
    "GET /webhook-endpoints/{id}",
    "GET /webhook-deliveries",
    "GET /webhook-deliveries/{id}",
    "GET /platform-shops",
    "GET /platform-shops/{id}",
    "GET /platform-shops/{id}/sku-mappings",
    "GET /carrier-accounts",
    "GET /carrier-accounts/{id}",
)
"""Token reads that not every role may make (``apps.merchants.roles``: the integrations area, with
webhooks, platform shops and carrier accounts, is the owner's); every token write is checked
against the token's role (``insufficient_role``)."""


def endpoint_codes(endpoint: str, *, takes_token: bool) -> list[str]:
    """Every code ``endpoint`` ("METHOD /path") can answer, in registry order."""
    wanted = set(ENDPOINT_ERRORS.get(endpoint, ())) | set(COMMON) | (set(TOKEN) if takes_token else set())
    if takes_token and (not endpoint.startswith("GET ") or endpoint in OWNER_READS):
        wanted.add("insufficient_role")
    return [code for code in ERROR_CODES if code in wanted]


def markdown_table() -> str:
    """The reference table of ``docs/api.md`` (rows by status, then registry order)."""
    rows = ["| status | code | when | `extra` |", "|---|---|---|---|"]
    for code, spec in sorted(ERROR_CODES.items(), key=lambda item: item[1].status):
        when = f"{spec.when} — *{spec.where}*" if spec.where else spec.when
        extra = ", ".join(f"`{k}`" for k in spec.extra_keys) or "—"
        rows.append(f"| {spec.status} | `{code}` | {when} | {extra} |")
    return "\n".join(rows) + "\n"
