"""A finished batch's documents: the thermal labels of its parcels (one PDF) and its picking list
(XLSX and CSV), written through the private ``exports`` storage (they carry buyers' names, phones
and addresses) and fetched through the batch's tenant-walled download."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db.models import Prefetch
from django.utils import timezone

from apps.orders.models import OrderLine

from .carriers.base import Party
from .documents import (
    LabelData,
    PickLine,
    picking_list_csv,
    picking_list_xlsx,
    picking_rows,
    render_labels,
)
from .models import Parcel, ParcelOrder, ShipBatch


def _party(r: dict[str, str]) -> Party:
    return Party(
        name=r.get("name", ""),
        mobile=r.get("phone", ""),
        province=r.get("province", ""),
        city=r.get("city", ""),
        district=r.get("district", ""),
        detail=r.get("detail", ""),
    )


def batch_parcels(batch: ShipBatch) -> list[Parcel]:
    from .shipping import parcels_of_batch

    # only what the labels and the picking list print (a batch of ten thousand orders loads them all)
    lines = OrderLine.objects.select_related("sku__product").only(
        "order",
        "quantity",
        *(f"sku__{f}" for f in ("code", "name", "color", "size", "location", "product")),
        "sku__product__name",
    )
    members = (
        ParcelOrder.objects.select_related("order")
        .only("parcel", "order", "order__public_id")
        .prefetch_related(Prefetch("order__lines", queryset=lines))
    )
    return list(parcels_of_batch(batch).prefetch_related(Prefetch("members", queryset=members)))


def write_batch_documents(batch: ShipBatch) -> None:
    """Render and store the labels and picking list of the batch's shipped parcels (none: no files)."""
    parcels = batch_parcels(batch)
    if not parcels:
        return
    now = timezone.now()
    account = batch.account
    labels: list[LabelData] = []
    picks: list[PickLine] = []
    for parcel in parcels:
        goods: dict[str, int] = {}
        orders = [m.order for m in parcel.members.all()]
        for order in orders:
            for line in order.lines.all():
                variant = " ".join(v for v in (line.sku.name, line.sku.color, line.sku.size) if v)
                name = line.sku.product.name
                goods[f"{name} {variant}".strip()] = goods.get(f"{name} {variant}".strip(), 0) + line.quantity
                picks.append(
                    PickLine(
                        sku_code=line.sku.code,
                        product_name=name,
                        option=variant,
                        location=line.sku.location,
                        quantity=line.quantity,
                        order_code=order.public_id,
                        parcel_code=parcel.code,
                    )
                )
        labels.append(
            LabelData(
                waybill_no=parcel.waybill_no,
                express=parcel.express,
                routing_code=parcel.routing_code,
                dest_code=parcel.dest_code,
                sender=account.sender,
                receiver=_party(parcel.receiver),
                goods=tuple(goods.items()),
                parcel_code=parcel.code,
                order_codes=tuple(o.public_id for o in orders),
                merchant_name=batch.merchant.name,
                printed_at=now,
            )
        )
    processes = settings.LABEL_PROCESSES if len(labels) >= settings.LABEL_PARALLEL_FROM else 1
    store = storages["exports"]
    stem = f"batch-{batch.pk}-{secrets.token_hex(12)}"
    rows = picking_rows(picks)
    names = {
        "labels_file": store.save(f"{stem}-labels.pdf", ContentFile(render_labels(labels, processes=processes))),
        "picking_xlsx": store.save(
            f"{stem}-picking.xlsx",
            ContentFile(picking_list_xlsx(rows, title=f"#{batch.pk}", generated_at=now)),
        ),
        "picking_csv": store.save(f"{stem}-picking.csv", ContentFile(picking_list_csv(rows))),
    }
    ShipBatch.objects.filter(pk=batch.pk).update(**names)
