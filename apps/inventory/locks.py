from django.db.models import QuerySet

from .models import Stock


def stock_rows_for_update(sku_ids: list[int]) -> QuerySet[Stock]:
    """Lock stock rows in a fixed (pk) order so concurrent writers cannot deadlock."""
    return Stock.objects.filter(sku_id__in=sku_ids).order_by("pk").select_for_update(of=("self",))
