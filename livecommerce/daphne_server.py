"""``python -m livecommerce.daphne_server [daphne options]``: daphne, with buyers' status-link
tokens taken out of its access log, and one line per websocket connection attempt.

Daphne writes its access log (on by default: verbosity 1 prints it to stdout) with the full
request URI, so ``GET /o/<id>/?t=<token>`` would put every buyer's order credential in the log.
Daphne has no formatting hook for that log, so this entry point swaps in an access-log writer that
redacts the ``t`` parameter and then runs daphne's own command line unchanged.

Daphne logs every websocket twice as it opens: ``WSCONNECTING`` when the handshake arrives and
``WSCONNECT`` (or ``WSREJECT``) when the application answers it. The second says all the first
does and how it ended, so the first is left out: one line per request, HTTP or websocket (plus
``WSDISCONNECT`` when a connection that was accepted closes).
"""

from __future__ import annotations

import datetime
from typing import Any

from daphne import cli
from daphne.access import AccessLogGenerator

from apps.core.logging import redact_url


class RedactingAccessLogGenerator(AccessLogGenerator):
    def __call__(self, protocol: str, action: str, details: dict[str, Any]) -> None:
        if protocol == "websocket" and action == "connecting":
            return
        super().__call__(protocol, action, details)

    def write_entry(
        self,
        host: Any,
        date: datetime.datetime,
        request: str,
        status: Any = None,
        length: Any = None,
        ident: Any = None,
        user: Any = None,
    ) -> None:
        super().write_entry(host, date, redact_url(request), status, length, ident, user)


def main() -> None:
    cli.AccessLogGenerator = RedactingAccessLogGenerator  # type: ignore[misc]  # cli.run() builds it by this name
    cli.CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
