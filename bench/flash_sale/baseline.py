"""The order path a team would write without a gate (Saleor-style): lock the stock row with
``select_for_update`` and decide everything in the database. Same auth, same validation, same
tables; no Redis, no ledger (which only flatters the baseline)."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.catalog.models import Listing
from apps.inventory.models import Stock, StockMovement
from apps.orders.models import LIVE_STATUSES, Buyer, Order, OrderLine
from apps.orders.placement.links import new_public_id
from apps.orders.placement.request import parse_order_request


class BaselineOrderApi(APIView):
    def post(self, request: Request) -> Response:
        req = parse_order_request(request.data)
        merchant_id = request.auth.merchant_id
        listing = Listing.objects.filter(pk=req.listing_id, merchant_id=merchant_id).first()
        if listing is None:
            return Response({"code": "listing_not_found", "message": "no such listing", "extra": {}}, status=404)
        qty = req.quantity
        with transaction.atomic():
            stock = Stock.objects.select_for_update().get(sku_id=listing.sku_id)
            listing = Listing.objects.select_for_update().get(pk=listing.pk)
            if listing.effective_status() != "open":
                return Response({"code": "listing_closed", "message": "closed", "extra": {}}, status=409)
            if listing.sold + qty > listing.quota or stock.on_hand - stock.reserved < qty:
                return Response({"code": "sold_out", "message": "sold out", "extra": {}}, status=409)
            held = (
                OrderLine.objects.filter(
                    listing=listing, order__buyer__external_id=req.buyer_external_id, order__status__in=LIVE_STATUSES
                ).aggregate(n=Sum("quantity"))["n"]
                or 0
            )
            if held + qty > listing.per_buyer_limit:
                return Response({"code": "over_buyer_limit", "message": "limit", "extra": {}}, status=409)
            buyer, _ = Buyer.objects.get_or_create(merchant_id=merchant_id, external_id=req.buyer_external_id)
            order = Order.objects.create(
                merchant_id=merchant_id,
                public_id=new_public_id(merchant_id=merchant_id, idempotency_key=None),
                session_id=listing.session_id,
                listing=listing,
                buyer=buyer,
                total=listing.price * qty,
                pay_by=timezone.now() + timedelta(seconds=listing.payment_window_seconds),
                shipping_address=req.address,
            )
            OrderLine.objects.create(
                order=order,
                listing=listing,
                sku_id=listing.sku_id,
                quantity=qty,
                unit_price=listing.price,
                line_total=listing.price * qty,
            )
            Stock.objects.filter(pk=stock.pk).update(reserved=F("reserved") + qty)
            Listing.objects.filter(pk=listing.pk).update(sold=F("sold") + qty)
            StockMovement.objects.create(
                merchant_id=merchant_id,
                sku_id=listing.sku_id,
                kind="reserve",
                reserved_delta=qty,
                reference=order.public_id,
            )
        return Response({"id": order.public_id, "status": order.status}, status=201)
