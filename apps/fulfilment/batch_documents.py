"""A finished batch's documents: the thermal labels of its parcels (one PDF) and its picking list
(XLSX and CSV), written through the private ``exports`` storage (they carry buyers' names, phones
and addresses) and fetched through the batch's tenant-walled download."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db.models import Prefetch
from django.utils import timezone

from apps.orders.models import Order, OrderLine

from .carriers.base import Party
from .documents import (
    LabelData,
    LabelsDrawing,
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
    lines = (
        OrderLine.objects.select_related("sku__product")
        .only(
            "order",
            "quantity",
            *(f"sku__{f}" for f in ("code", "name", "color", "size", "location", "product")),
            "sku__product__name",
        )
        .order_by("pk")
    )
    members = (
        ParcelOrder.objects.select_related("order")
        .only("parcel", "order", "order__public_id")
        .prefetch_related(Prefetch("order__lines", queryset=lines))
        .order_by("pk")
    )
    return list(parcels_of_batch(batch).prefetch_related(Prefetch("members", queryset=members)))


def _names(line: OrderLine) -> tuple[str, str]:
    """A line's product name and its SKU's spec (规格)."""
    return line.sku.product.name, " ".join(v for v in (line.sku.name, line.sku.color, line.sku.size) if v)


def parcel_label(
    parcel: Parcel, orders: Sequence[Order], *, sender: Party, merchant_name: str, printed_at: datetime
) -> LabelData:
    """The label of a parcel holding ``orders`` (in the parcel's order, their lines loaded with
    their SKU and product): what the batch's documents print, and what a run starts drawing."""
    goods: dict[str, int] = {}
    for order in orders:
        for line in order.lines.all():
            name, variant = _names(line)
            goods[f"{name} {variant}".strip()] = goods.get(f"{name} {variant}".strip(), 0) + line.quantity
    return LabelData(
        waybill_no=parcel.waybill_no,
        express=parcel.express,
        routing_code=parcel.routing_code,
        dest_code=parcel.dest_code,
        sender=sender,
        receiver=_party(parcel.receiver),
        goods=tuple(goods.items()),
        parcel_code=parcel.code,
        order_codes=tuple(o.public_id for o in orders),
        merchant_name=merchant_name,
        printed_at=printed_at,
    )


def write_batch_documents(batch: ShipBatch, *, early: LabelsDrawing | None = None) -> None:
    """Render and store the labels and picking list of the batch's shipped parcels (none: no
    files). ``early``: the labels the run started drawing once its waybills were in
    (``shipping._start_labels``); used when they are the labels of the parcels that shipped (the
    time printed on them is when they were started), else dropped and the labels drawn now."""
    parcels = batch_parcels(batch)
    if not parcels:
        if early is not None:
            early.cancel()
        return
    now = timezone.now()
    sender, merchant_name = batch.account.sender, batch.merchant.name
    labels: list[LabelData] = []
    picks: list[PickLine] = []
    for parcel in parcels:
        orders = [m.order for m in parcel.members.all()]
        labels.append(parcel_label(parcel, orders, sender=sender, merchant_name=merchant_name, printed_at=now))
        for order in orders:
            for line in order.lines.all():
                name, variant = _names(line)
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
    pdf: bytes | None = None
    if early is not None:
        started = early.labels[0].printed_at
        if early.labels == tuple(replace(label, printed_at=started) for label in labels):
            pdf = early.result()
        else:  # an order left its parcel meanwhile (cancelled before it shipped)
            early.cancel()
    if pdf is None:
        processes = settings.LABEL_PROCESSES if len(labels) >= settings.LABEL_PARALLEL_FROM else 1
        pdf = render_labels(labels, processes=processes)
    store = storages["exports"]
    stem = f"batch-{batch.pk}-{secrets.token_hex(12)}"
    rows = picking_rows(picks)
    names = {
        "labels_file": store.save(f"{stem}-labels.pdf", ContentFile(pdf)),
        "picking_xlsx": store.save(
            f"{stem}-picking.xlsx",
            ContentFile(picking_list_xlsx(rows, title=f"#{batch.pk}", generated_at=now)),
        ),
        "picking_csv": store.save(f"{stem}-picking.csv", ContentFile(picking_list_csv(rows))),
    }
    ShipBatch.objects.filter(pk=batch.pk).update(**names)
