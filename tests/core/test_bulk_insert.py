"""``apps.core.bulk.insert_rows``: rows written as given (their own times: no ``auto_now``), the
new ids in the order of the rows, across batches and the parameter limit, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.core.bulk import insert_rows
from apps.orders.models import Buyer


@pytest.mark.django_db
def test_rows_keep_their_own_times_and_come_back_with_their_ids_in_order(merchant) -> None:  # type: ignore[no-untyped-def]
    long_ago = datetime(2024, 3, 2, 10, 15, 30, 123456, tzinfo=UTC)
    rows = [(merchant.pk, f"b{i:05d}", f"买家{i}", "", long_ago + timedelta(minutes=i)) for i in range(2503)]
    pks = insert_rows(Buyer, ("merchant", "external_id", "name", "phone", "created_at"), rows, batch_size=1000)
    assert len(pks) == len(set(pks)) == 2503
    stored = {b.pk: b for b in Buyer.objects.filter(merchant=merchant)}
    for pk, (_m, ext, name, _phone, created) in zip(pks, rows, strict=True):
        assert (stored[pk].external_id, stored[pk].name, stored[pk].created_at) == (ext, name, created)


@pytest.mark.django_db
def test_without_returning_nothing_comes_back_and_a_wrong_row_is_refused(merchant) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    fields = ("merchant", "external_id", "name", "phone", "created_at")
    assert insert_rows(Buyer, fields, [(merchant.pk, "x", "", "", now)], returning=False) == []
    assert Buyer.objects.filter(merchant=merchant, external_id="x").exists()
    with pytest.raises(ValueError, match="2 values for 5 fields"):
        insert_rows(Buyer, fields, [(merchant.pk, "y")])
