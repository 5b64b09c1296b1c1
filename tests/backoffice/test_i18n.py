"""The back office speaks zh-hans: every user-visible string of every admin page a merchant's
staff can open is translated, and every catalog in the repository is complete and compiled.

The page check renders each screen in zh-hans over data written in Chinese and fails on any
English word in what a person sees (text, button labels, placeholders, titles, aria-labels,
option labels), apart from a short list of words that are the same in both languages (SKU, API,
CSV, ...). It catches strings that were never marked for translation as well as translations
that are missing from a catalog."""

from __future__ import annotations

import ast
import gettext as pygettext
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from apps.merchants import services as merchants
from apps.orders.models import OrderStatus

pytestmark = pytest.mark.django_db

ROOT = Path(settings.BASE_DIR)

# Words that read the same to a Chinese merchant: product names of the trade, formats, units.
SAME_IN_BOTH = set(
    """livecommerce sku skus api csv xlsx pdf gmv id url ip json en token tokens http https utc cst pm am ok
    iso hmac cny rmb pc ios app erp wms logo vip jpeg png webp gif mb kb webhook webhooks""".split()
)
SAME_IN_BOTH |= {"accesskey"}  # Aliyun's own term, written so in its Chinese console (AccessKey ID)
SAME_IN_BOTH |= {"ems"}  # the express company (中国邮政速递) is called EMS in Chinese too
# Django's boolean icons carry alt="True"/"False"/"None", which Django does not translate.
SAME_IN_BOTH |= {"true", "false", "none"}
WORD = re.compile(r"[A-Za-z]{2,}")
VISIBLE_ATTRS = ("title", "placeholder", "aria-label", "alt")


class _Visible(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self._skip = 0
        self._stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("script", "style", "template", "noscript"):
            self._skip += 1
        if tag in ("svg",):
            self._skip += 1
        if self._skip:
            return
        if a.get("hidden") is not None and tag != "input" or a.get("type") == "hidden":
            return
        for name in VISIBLE_ATTRS:
            if a.get(name):
                self.texts.append(str(a[name]))
        if tag == "input" and a.get("type") in ("submit", "button") and a.get("value"):
            self.texts.append(str(a["value"]))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "template", "noscript", "svg") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.texts.append(data.strip())


def english_words(html: str, data_words: set[str]) -> list[str]:
    parser = _Visible()
    parser.feed(html)
    found = []
    for text in parser.texts:
        for w in WORD.findall(text):
            if w.lower() not in SAME_IN_BOTH and w.lower() not in data_words:
                found.append(f"{w!r} in {text[:80]!r}")
    return found


@pytest.fixture
def zh_staff(merchant, make_order):  # type: ignore[no-untyped-def]
    """A shop with an order in each state and staff whose browser asks for Chinese. Everything the
    merchant and buyers wrote is Chinese, so an English word on a page is the interface's."""
    from apps.catalog.models import LiveSession, Product
    from apps.orders.models import Buyer, Order

    merchant.name = "演示小店"
    merchant.save()
    for status in (OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.CONFIRMED, OrderStatus.CANCELLED):
        make_order(merchant=merchant, status=status)
    Product.objects.filter(merchant=merchant).update(name="手工羊绒围巾", description="内蒙古白山羊绒")
    LiveSession.objects.filter(merchant=merchant).update(title="年货节直播专场", streamer="小雅")
    Buyer.objects.filter(merchant=merchant).update(name="王小明")
    for order in Order.objects.filter(merchant=merchant):  # the recipient the buyer typed
        Order.objects.filter(pk=order.pk).update(shipping_address={**order.shipping_address, "name": "王小明"})
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-CN")
    client.force_login(merchants.staff_create(merchant=merchant, username="xiaomei", password="pw-123456789"))
    return client


def _data_words(merchant) -> set[str]:  # type: ignore[no-untyped-def]
    """Words that are the merchant's identifiers, not interface: SKU codes, order numbers, buyer
    ids, API token names and prefixes, the shop's slug, the staff login, and the reasons the stock
    service writes on movements (a record of what happened, kept as written)."""
    from apps.catalog.models import SKU
    from apps.inventory.models import StockMovement
    from apps.merchants.models import ApiToken
    from apps.orders.models import Order

    words = {merchant.slug.lower(), "xiaomei"}
    for value in [
        *SKU.objects.filter(merchant=merchant).values_list("code", flat=True),
        *Order.objects.filter(merchant=merchant).values_list("public_id", flat=True),
        *Order.objects.filter(merchant=merchant).values_list("buyer__external_id", flat=True),
        *ApiToken.objects.filter(merchant=merchant).values_list("name", flat=True),
        *ApiToken.objects.filter(merchant=merchant).values_list("prefix", flat=True),
        *StockMovement.objects.filter(merchant=merchant).values_list("reason", flat=True),
    ]:
        words.update(w.lower() for w in WORD.findall(str(value)))
    return words


def admin_pages(client: Client) -> list[str]:
    """Every admin screen this staff member can open: the home page, and for each model the list,
    the add form and the first object's page."""
    pages = [reverse("admin:index"), reverse("admin:password_change")]
    request = client.get(reverse("admin:index")).wsgi_request
    for model, model_admin in admin.site._registry.items():
        if not model_admin.has_module_permission(request) or not model_admin.has_view_permission(request):
            continue
        info = (model._meta.app_label, model._meta.model_name)
        pages.append(reverse("admin:{}_{}_changelist".format(*info)))
        if model_admin.has_add_permission(request):
            pages.append(reverse("admin:{}_{}_add".format(*info)))
        obj = model_admin.get_queryset(request).first()
        if obj is not None:
            pages.append(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
    return pages


def test_every_admin_page_is_in_chinese_for_a_chinese_browser(zh_staff, merchant) -> None:  # type: ignore[no-untyped-def]
    data = _data_words(merchant)
    problems: dict[str, list[str]] = {}
    pages = admin_pages(zh_staff)
    assert len(pages) > 10
    for url in pages:
        r = zh_staff.get(url)
        assert r.status_code == 200, url
        assert r.headers["Content-Language"] == "zh-hans", url
        found = english_words(r.content.decode(), data)
        if found:
            problems[url] = sorted(set(found))
    assert not problems, "untranslated on zh-hans pages:\n" + "\n".join(
        f"{url}:\n  " + "\n  ".join(words) for url, words in problems.items()
    )


def test_the_check_catches_one_untranslated_label(zh_staff, merchant) -> None:  # type: ignore[no-untyped-def]
    """One status label or model name left in English on a page is reported; the shop's own
    identifiers are not."""
    data = _data_words(merchant)
    overlap = {"paid", "confirmed", "cancelled", "product", "show", "buyer"} & data
    assert not overlap, overlap
    page = '<td><span class="lc-badge">Paid</span></td><td>订单 <b>SKU-1</b></td><img alt="Product">'
    assert english_words(page, data) == ["'Paid' in 'Paid'", "'Product' in 'Product'"]


def test_the_check_catches_english(zh_staff, merchant) -> None:  # type: ignore[no-untyped-def]
    """The page check is not vacuous: the same screens in English are full of English words."""
    zh_staff.cookies["django_language"] = "en"
    r = zh_staff.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en")
    assert len(english_words(r.content.decode(), _data_words(merchant))) > 20


def _catalogs() -> list[Path]:
    project = sorted(ROOT.glob("locale/*/LC_MESSAGES/django.po"))
    return project + sorted(ROOT.glob("apps/*/locale/*/LC_MESSAGES/django.po"))


def _entries(po: Path) -> list[tuple[str | None, str, str, bool]]:
    """(msgctxt, msgid, msgstr, fuzzy) of each entry of a .po file (plural forms: msgstr[0])."""
    entries: list[tuple[str | None, str, str, bool]] = []
    for block in po.read_text(encoding="utf-8").split("\n\n"):
        fields: dict[str, str] = {}
        field = None
        fuzzy = False
        for line in block.splitlines():
            if line.startswith("#,") and "fuzzy" in line:
                fuzzy = True
            elif line.startswith("#"):
                continue
            elif line.startswith('"') and field:
                fields[field] += ast.literal_eval(line)
            elif " " in line:
                key, value = line.split(" ", 1)
                field = {"msgstr[0]": "msgstr"}.get(key, key)
                if field in ("msgctxt", "msgid", "msgstr"):
                    fields[field] = ast.literal_eval(value)
                else:
                    field = None
        if fields.get("msgid"):
            entries.append((fields.get("msgctxt"), fields["msgid"], fields.get("msgstr", ""), fuzzy))
    return entries


def test_every_catalog_is_complete_and_compiled() -> None:
    catalogs = _catalogs()
    assert catalogs, "no translation catalogs found"
    for po in catalogs:
        entries = _entries(po)
        assert entries, po
        missing = [m for _, m, s, fuzzy in entries if not s or fuzzy]
        assert not missing, f"{po}: untranslated or fuzzy: {missing}"
        mo = po.with_suffix(".mo")
        assert mo.exists(), f"{mo} missing: run compilemessages"
        with mo.open("rb") as f:
            compiled = pygettext.GNUTranslations(f)
        stale = [m for c, m, s, _ in entries if (compiled.pgettext(c, m) if c else compiled.gettext(m)) != s]
        assert not stale, f"{mo} is older than {po.name}: run compilemessages ({stale[:5]})"
