from apps.core.errors import ApplicationError, Conflict, NotFound


class InvalidOrder(ApplicationError):
    code = "invalid"
    http_status = 400


class ListingNotFound(NotFound):
    code = "listing_not_found"


class OrderNotFound(NotFound):
    code = "order_not_found"


class SoldOut(Conflict):
    code = "sold_out"


class OverBuyerLimit(Conflict):
    code = "over_buyer_limit"


class ListingClosed(Conflict):
    code = "listing_closed"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class IdempotencyConflict(ApplicationError):
    code = "idempotency_key_reused"
    http_status = 422


class SignatureInvalid(ApplicationError):
    code = "signature_invalid"
    http_status = 401


class TimestampStale(ApplicationError):
    code = "timestamp_stale"
    http_status = 401


class AmountMismatch(ApplicationError):
    code = "amount_mismatch"
    http_status = 422


class TransactionConflict(Conflict):
    code = "transaction_id_reused"


class Unavailable(ApplicationError):
    code = "temporarily_unavailable"
    http_status = 503


class LedgerUnverifiable(ApplicationError):
    """An order's ledger does not verify (the proof is refused rather than published)."""

    code = "ledger_unverifiable"
    http_status = 409


class NoteInvalid(ApplicationError):
    code = "note_invalid"
    http_status = 400


class FlagInvalid(ApplicationError):
    code = "flag_invalid"
    http_status = 400
