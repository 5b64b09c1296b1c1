"""Messages in: pushes (Douyin, Kuaishou) and pulls (Taobao TMC), stored raw before anything else.

``receive_push`` answers a push: the shop comes from the push URL's token (never from the body);
the body is verified (Douyin ``event-sign``) or decrypted (Kuaishou AES); each event is stored in
the inbox (one row per platform message id: a repeated push adds nothing) and committed, and only
then is the platform answered with its success reply. A bad signature, an undecryptable body or an
unknown push URL is stored as ``rejected``, answered with the platform's failure reply, and never
processed. ``pull_shop`` does the same for a Taobao shop's TMC queue: consume, store, commit,
confirm. Processing happens in a worker (``processing.process_pending``), kicked after commit.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from apps.catalog.models import LiveSession

from .clients import client_for, shop_credentials
from .kick import kick_processing
from .models import InboxMessage, PlatformShop, ShopPlatform
from .protocol import douyin, kuaishou, taobao
from .protocol.base import MalformedPayload, PlatformError, PushEvent, SignatureInvalid, UndecryptableBody
from .selectors import shop_by_push_token

log = logging.getLogger(__name__)

IGNORED_KINDS = frozenset({"verification", "heartbeat"})


@dataclass(frozen=True)
class PushAnswer:
    status: int
    body: bytes  # the platform's own reply, JSON


def _failure(platform: str, message: str) -> bytes:
    if platform == ShopPlatform.DOUYIN:
        return douyin.push_failure_body(message)
    return kuaishou.push_failure_body(message)


def _ack(platform: str) -> bytes:
    return douyin.push_ack_body() if platform == ShopPlatform.DOUYIN else kuaishou.push_ack_body()


def _text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def _reject(shop: PlatformShop | None, platform: str, headers: Mapping[str, str], body: bytes, why: str) -> None:
    InboxMessage.objects.create(
        shop=shop,
        platform=platform,
        headers=dict(headers),
        body=_text(body),
        state=InboxMessage.State.REJECTED,
        error=why[:500],
    )
    log.warning("platform push refused", extra={"platform": platform, "shop": getattr(shop, "pk", None), "why": why})


def receive_push(*, platform: str, push_token: str, headers: Mapping[str, str], body: bytes) -> PushAnswer:
    """Store and answer one push (see the module docstring)."""
    if platform not in (ShopPlatform.DOUYIN, ShopPlatform.KUAISHOU):
        return PushAnswer(404, b'{"code":404,"msg":"unknown platform"}')
    shop = shop_by_push_token(platform=platform, push_token=push_token)
    if shop is None:  # nothing stored: anyone can call an unknown URL
        log.warning("platform push to an unknown or disabled push URL", extra={"platform": platform})
        return PushAnswer(404, _failure(platform, "unknown push URL"))
    creds = shop_credentials(shop)
    try:
        if platform == ShopPlatform.DOUYIN:
            douyin.verify_push(headers, body, creds)
            events = douyin.parse_push(body)
            raws = [json.dumps(e.raw, ensure_ascii=False, separators=(",", ":")) for e in events]
        else:
            events = [kuaishou.decrypt_push(body, shop.msg_secret)]
            raws = [_text(body)]  # the ciphertext as received; processing decrypts it again
    except (SignatureInvalid, UndecryptableBody, MalformedPayload) as exc:
        _reject(shop, platform, headers, body, f"{type(exc).__name__}: {exc}")
        return PushAnswer(401 if isinstance(exc, SignatureInvalid) else 400, _failure(platform, str(exc)))
    if _store(shop, headers, list(zip(events, raws, strict=True))):
        transaction.on_commit(kick_processing)
    return PushAnswer(200, _ack(platform))


@transaction.atomic
def _store(shop: PlatformShop, headers: Mapping[str, str], items: list[tuple[PushEvent, str]]) -> int:
    """Insert the events not seen before (one row per message id; a repeat adds nothing); returns
    how many rows were offered (a kick for a repeat finds nothing due, and costs nothing)."""
    rows = []
    for event, raw in items:
        if event.kind == "heartbeat":
            continue
        state = InboxMessage.State.IGNORED if event.kind in IGNORED_KINDS else InboxMessage.State.PENDING
        rows.append(
            InboxMessage(
                shop=shop,
                platform=shop.platform,
                message_id=str(event.message_id or "")[:128],
                kind=event.kind[:32],
                topic=str(event.topic or "")[:128],
                external_order_id=str(event.order_id or "")[:64],
                headers=dict(headers),
                body=raw,
                state=state,
                processed_at=timezone.now() if state == InboxMessage.State.IGNORED else None,
            )
        )
    if rows:
        InboxMessage.objects.bulk_create(rows, ignore_conflicts=True)
    PlatformShop.objects.filter(pk=shop.pk).update(last_message_at=timezone.now())
    return len(rows)


def pull_shop(shop: PlatformShop, *, quantity: int = 100, group_name: str = "default") -> int:
    """One TMC round for a Taobao shop: consume, store raw, commit, confirm. Returns how many new
    messages were stored. A platform error is recorded on the shop and raised to the caller."""
    client = client_for(shop)
    if not isinstance(client, taobao.TaobaoClient):
        raise ValueError(f"{shop.platform} is pushed, not pulled")
    with client:
        try:
            messages = client.tmc_consume(group_name=group_name, quantity=quantity)
        except PlatformError as exc:
            _sync_error(shop, exc)
            raise
        if not messages:
            PlatformShop.objects.filter(pk=shop.pk).update(last_pull_at=timezone.now())
            return 0
        items = []
        for raw in messages:
            try:
                event = taobao.parse_tmc_message(raw)
            except MalformedPayload as exc:
                _reject(shop, shop.platform, {}, json.dumps(raw, ensure_ascii=False).encode(), str(exc))
                continue
            items.append((event, json.dumps(raw, ensure_ascii=False, separators=(",", ":"))))
        new = _store(shop, {}, items)  # committed here: only then confirmed to the platform
        PlatformShop.objects.filter(pk=shop.pk).update(last_pull_at=timezone.now())
        try:
            client.tmc_confirm([str(m.get("id")) for m in messages if m.get("id") is not None], group_name=group_name)
        except PlatformError as exc:  # not confirmed: redelivered later, and deduplicated then
            _sync_error(shop, exc)
    if new:
        kick_processing()
    return new


def _sync_error(shop: PlatformShop, exc: Exception) -> None:
    PlatformShop.objects.filter(pk=shop.pk).update(last_error=str(exc)[:500], last_error_at=timezone.now())


def stored_event(message: InboxMessage) -> PushEvent:
    """The event a stored message holds, parsed again from its raw body."""
    shop = message.shop
    if message.platform == ShopPlatform.DOUYIN:
        return douyin.parse_push(f"[{message.body}]".encode())[0]
    if message.platform == ShopPlatform.KUAISHOU:
        assert shop is not None
        return kuaishou.decrypt_push(message.body.encode(), shop.msg_secret)
    return taobao.parse_tmc_message(json.loads(message.body))


PULL_EVERY_S = 3.0
PULL_BURST_S = 55.0


def pull_burst(seconds: float = PULL_BURST_S) -> int:
    """The minute schedule's Taobao pull: every ``PULL_EVERY_S`` for up to ``seconds`` while a
    merchant with an enabled Taobao shop has a show on air, else one round. Returns messages stored."""
    deadline = time.monotonic() + seconds
    total = 0
    while True:
        shops = list(PlatformShop.objects.filter(platform=ShopPlatform.TAOBAO, enabled=True))
        for shop in shops:
            try:
                total += pull_shop(shop)
            except PlatformError:
                log.warning("taobao pull failed", extra={"shop": shop.pk}, exc_info=True)
        live = LiveSession.objects.filter(
            merchant_id__in={s.merchant_id for s in shops}, status=LiveSession.Status.LIVE
        ).exists()
        if not live or time.monotonic() + PULL_EVERY_S > deadline:
            return total
        time.sleep(PULL_EVERY_S)
