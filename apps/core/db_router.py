"""Reads that may come from a read replica.

A model opts in with the class attribute ``replica_reads = True`` (the reports' rollups: read by
pages, the API and the forecast, written only by the rollup job). When ``READ_REPLICA_DB`` names
a database alias (production: ``DATABASE_REPLICA_URL``), those models' reads go there; everything
else, and every write, goes to ``default``. A replica is never migrated (it is a copy of the
primary) and never written, even through an object read from it.

What a replica costs: its lag. A rollup is there once the replica has replayed it (usually well
under a second); a page shown in that moment shows the previous minute's report, or "not ready"
for a show's first one. Nothing that must read its own writes opts in.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS


def replica_alias() -> str | None:
    return getattr(settings, "READ_REPLICA_DB", None) or None


class ReadReplicaRouter:
    def db_for_read(self, model: type[Any], **hints: Any) -> str | None:
        alias = replica_alias()
        if alias and getattr(model, "replica_reads", False):
            return alias
        return None

    def db_for_write(self, model: type[Any], **hints: Any) -> str | None:
        # Without this, saving an object read from the replica would write to the replica.
        return DEFAULT_DB_ALIAS if replica_alias() else None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        alias = replica_alias()
        if alias:
            same = {DEFAULT_DB_ALIAS, alias}
            if obj1._state.db in same and obj2._state.db in same:
                return True  # the replica holds the primary's rows: a relation across them is one
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        if db != DEFAULT_DB_ALIAS and db == replica_alias():
            return False
        return None
