class HistoryError(Exception):
    """Generated history cannot be made or deleted as asked (``history``); nothing was written.
    Only the management command meets it (it is never an HTTP answer, so it carries no error code)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
