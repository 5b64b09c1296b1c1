from apps.core.errors import ApplicationError, Conflict


class QuotaExceedsSupply(ApplicationError):
    code = "quota_exceeds_supply"
    http_status = 400


class SessionEnded(Conflict):
    code = "session_ended"


class ListingStateError(Conflict):
    code = "invalid_listing_state"


class InvalidInput(ApplicationError):
    code = "invalid"
    http_status = 400
