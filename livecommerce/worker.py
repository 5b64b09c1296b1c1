"""``python -m livecommerce.worker``: ``manage.py qcluster`` (django-q2's worker cluster) as ``./run``
runs it, with a quick exit once the cluster has stopped.

``qcluster`` starts the cluster and returns; the process then waits for the cluster in Python's
exit handlers, and on SIGTERM/SIGINT django-q2 stops it in order (pusher, workers, monitor: under
a second). What followed was the interpreter's own shutdown, a full garbage collection of the
whole Django process, measured at 1 to 1.5 s on a busy 2-core machine: most of a Ctrl-C. Here we
wait for the cluster ourselves, flush the logs and leave with ``os._exit``: nothing is left to
tidy up, the cluster's processes have all exited.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "livecommerce.settings.local")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("qcluster", *sys.argv[1:])  # returns once the cluster runs; signals stop it
    code = 0
    for child in multiprocessing.active_children():  # the sentinel (the cluster's own forks are its)
        child.join()
        code = code or (child.exitcode or 0)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1 if code else 0)


if __name__ == "__main__":
    main()
