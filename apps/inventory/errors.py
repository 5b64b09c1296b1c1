from apps.core.errors import ApplicationError, Conflict


class StockError(ApplicationError):
    code = "invalid_stock_change"
    http_status = 400


class InsufficientStock(Conflict):
    code = "insufficient_stock"
