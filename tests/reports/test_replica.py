"""The read-replica router, with a second database alias (``replica``: in tests a mirror of the
test database through its own connection). With ``READ_REPLICA_DB`` set, the report pages, the
API and the time-slot analysis read the rollups from the replica; the rollup job, and every
write, use the primary; without it nothing goes to the replica."""

from __future__ import annotations

import re

import pytest
from django.db import connections
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from apps.core.db_router import ReadReplicaRouter
from apps.merchants import services as merchants
from apps.orders.models import Order
from apps.reports.models import SessionReport
from apps.reports.rollups import rollup_session

from .test_session_report import make_history

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])
TABLE = SessionReport._meta.db_table
WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|CREATE|ALTER|DROP)\b", re.IGNORECASE)


@pytest.fixture(autouse=True)
def _close_replica():
    yield
    replica = connections["replica"]
    replica.close()
    if hasattr(replica, "close_pool"):  # PostgreSQL's pool: its connections would keep the test database open
        replica.close_pool()


def _reads(ctx: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries if TABLE in q["sql"]]


def _pages(merchant, api, session_id: int) -> list[int]:  # type: ignore[no-untyped-def]
    user = merchants.staff_create(merchant=merchant, username=f"analyst{session_id}", password="pw-123456789")
    web = Client()
    web.force_login(user)
    return [
        web.get("/reports/").status_code,
        web.get(f"/reports/sessions/{session_id}/").status_code,
        web.get("/reports/slots/").status_code,
        api.get(f"/api/v1/reports/sessions/{session_id}").status_code,
        api.get("/api/v1/reports/sessions").status_code,
        api.get("/api/v1/reports/slots").status_code,
    ]


def test_with_a_replica_the_reports_read_their_rollups_there_and_write_to_the_primary(merchant, api) -> None:  # type: ignore[no-untyped-def]
    session = make_history(merchant, 5, 12)
    with override_settings(READ_REPLICA_DB="replica"):
        with (
            CaptureQueriesContext(connections["default"]) as primary,
            CaptureQueriesContext(connections["replica"]) as replica,
        ):
            report = rollup_session(session.pk)
        assert report is not None and report._state.db == "default"
        assert _reads(primary) and not replica.captured_queries  # the job reads and writes the primary
        with (
            CaptureQueriesContext(connections["default"]) as primary,
            CaptureQueriesContext(connections["replica"]) as replica,
        ):
            assert _pages(merchant, api, session.pk) == [200] * 6
        assert len(_reads(replica)) >= 6, replica.captured_queries
        assert not _reads(primary), _reads(primary)  # every rollup read went to the replica
        writes = [q["sql"] for q in replica.captured_queries if WRITE.search(q["sql"])]
        assert not writes, writes  # reads only (PostgreSQL's iterator() reads through DECLARE ... CURSOR)
        # an object read from the replica is saved to the primary, and may refer to the primary's rows
        copy = SessionReport.objects.get(pk=session.pk)
        assert copy._state.db == "replica"
        copy.streamer = "换人"
        copy.session = session
        with CaptureQueriesContext(connections["replica"]) as replica:
            copy.save()
        assert not replica.captured_queries
        assert SessionReport.objects.using("default").get(pk=session.pk).streamer == "换人"


def test_without_a_replica_nothing_reads_from_it(merchant, api) -> None:  # type: ignore[no-untyped-def]
    session = make_history(merchant, 6, 8)
    rollup_session(session.pk)
    with CaptureQueriesContext(connections["replica"]) as replica:
        assert _pages(merchant, api, session.pk) == [200] * 6
    assert not replica.captured_queries


def test_the_router_keeps_everything_else_on_the_primary_and_never_migrates_the_replica() -> None:
    router = ReadReplicaRouter()
    with override_settings(READ_REPLICA_DB="replica"):
        assert router.db_for_read(SessionReport) == "replica"
        assert router.db_for_read(Order) is None  # orders: the primary (Django's default)
        assert router.db_for_write(SessionReport) == "default"
        assert router.allow_migrate("replica", "reports") is False
        assert router.allow_migrate("default", "reports") is None
    assert router.db_for_read(SessionReport) is None
    assert router.db_for_write(SessionReport) is None
