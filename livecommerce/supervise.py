"""``python -m livecommerce.supervise --parent PID [--grace S] -- COMMAND...``: run COMMAND in our
own process group and take that whole group down when we are told to stop or our parent dies.

Why: ``./run`` starts django-q2's ``qcluster``, which forks a sentinel, a monitor, a pusher and
workers. A die-with-parent signal (``PR_SET_PDEATHSIG``) set on ``qcluster`` is not inherited by
those forks, and the cluster handles SIGTERM itself (finishing tasks, restarting workers), so a
launcher killed with SIGKILL left the worker tree running for good. This wrapper is tiny and
standard-library only: it has the die-with-parent signal itself (and also polls its parent, in
case the signal was missed). To stop, it sends SIGTERM to COMMAND alone and lets it stop its own
forks in order (qcluster: pusher, then workers, then monitor, in about a second); SIGTERM to the
whole group at once kills the sentinel while qcluster's main process is signalling it, which
deadlocks that process until the SIGKILL. When COMMAND has exited, or after ``--grace`` seconds,
whatever is still in the group is sent SIGTERM and then SIGKILL (the cluster's forks stay in the
group even when their own parent is gone). Linux only, like the launcher.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1


def group_members(pgid: int) -> list[int]:
    """Pids of the live (not zombie) processes in process group ``pgid``, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry))
    return found


def signal_group(pgid: int, sig: int, *, spare: int) -> int:
    """Send ``sig`` to every process of group ``pgid`` but ``spare`` (us); return how many."""
    pids = [p for p in group_members(pgid) if p != spare]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    return len(pids)


def _set_pdeathsig(sig: int) -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, sig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m livecommerce.supervise")
    p.add_argument("--parent", type=int, default=0, help="stop when this pid is no longer our parent")
    p.add_argument("--grace", type=float, default=5.0, help="seconds between SIGTERM and SIGKILL")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("no command given")

    me = os.getpid()
    if os.getpgrp() != me:
        os.setpgid(0, 0)
    _set_pdeathsig(signal.SIGTERM)
    if args.parent and os.getppid() != args.parent:  # the parent died before the line above
        return 1

    stop: dict[str, int] = {}

    def request_stop(signum: int, _frame: object) -> None:
        stop.setdefault("signal", signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, request_stop)

    child = subprocess.Popen(command)  # stays in our group, and so do its forks
    code: int | None = None
    while "signal" not in stop:
        code = child.poll()
        if code is not None:
            break
        if args.parent and os.getppid() != args.parent:
            stop["signal"] = signal.SIGTERM
            break
        time.sleep(0.1)

    pgid = os.getpgrp()
    if "signal" in stop:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(args.grace)
        # Forks COMMAND left behind (or all of them, if it did not stop in time): SIGTERM, a short
        # wait, then the SIGKILL below.
        if signal_group(pgid, signal.SIGTERM, spare=me):
            deadline = time.monotonic() + min(1.0, args.grace)
            while time.monotonic() < deadline and group_members(pgid) != [me]:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(-1, os.WNOHANG)  # reap our child so it stops counting
                time.sleep(0.05)
    # Whatever is left (a fork whose parent exited, a process that ignores SIGTERM) is killed;
    # loop in case one forked while we were looking.
    for _ in range(20):
        if not signal_group(pgid, signal.SIGKILL, spare=me):
            break
        time.sleep(0.05)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(5)
    if "signal" in stop:
        return 128 + stop["signal"]
    return code if code is not None else 1


if __name__ == "__main__":
    sys.exit(main())
