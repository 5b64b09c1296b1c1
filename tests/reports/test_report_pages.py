"""The report pages keep to the login's role (roles.REPORTS: view for the pages, export for the
exports; a customer-service login gets the reports' 403 page and can export nothing), the forecast
page never answers a plain visit with a 400 (its defaults are brought within the form's limits), the
channels table is named on the server in the page's language, and bad days in the slots and
forecast inputs are a 400, never a 500."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.catalog.models import LiveSession
from apps.merchants import roles
from apps.merchants import services as merchants
from apps.reports.forms import ForecastForm
from apps.reports.models import ReportExport, SessionReport
from apps.reports.rollups import rollup_session
from apps.reports.suggestions import plan_defaults

from .test_session_report import make_history

pytestmark = pytest.mark.django_db
PAGES = ("/reports/", "/reports/slots/", "/reports/forecast/")


def member(merchant, role: str, name: str | None = None, language: str = "en") -> Client:  # type: ignore[no-untyped-def]
    c = Client(HTTP_ACCEPT_LANGUAGE=language)
    c.force_login(
        merchants.staff_create(merchant=merchant, username=name or f"{role}-{merchant.slug}", password="", role=role)
    )
    return c


@pytest.fixture
def report(merchant) -> SessionReport:  # type: ignore[no-untyped-def]
    session = make_history(merchant, seed=5, n_orders=40)
    report = rollup_session(session.pk)
    assert report is not None and report.figures["channels"]
    return report


@pytest.fixture
def oncommit(django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """After-commit callbacks run (the export task is sent on commit; tests run tasks in-process)."""
    return django_capture_on_commit_callbacks


# --- roles -------------------------------------------------------------------------------------


def test_customer_service_gets_no_report_page_and_no_export(merchant, report, oncommit) -> None:  # type: ignore[no-untyped-def]
    assert not roles.can(roles.CUSTOMER_SERVICE, roles.REPORTS, "view")  # the table says so
    cs = member(merchant, roles.CUSTOMER_SERVICE)
    show = f"/reports/sessions/{report.session_id}/"
    for path in (*PAGES, show, f"/reports/forecast/?merchant={merchant.pk}"):
        r = cs.get(path)
        assert r.status_code == 403 and b"No reports for this role" in r.content, path
    for path, data in ((f"{show}export/", {"format": "csv"}), ("/reports/slots/export/", {"format": "xlsx"})):
        with oncommit(execute=True):
            r = cs.post(path, data)
        assert r.status_code == 403, path
    assert not ReportExport.objects.exists()
    # An analyst's export is not theirs to read either.
    analyst = member(merchant, roles.ANALYST)
    with oncommit(execute=True):
        made = analyst.post(f"{show}export/", {"format": "csv"})
    assert made.status_code == 302
    job = ReportExport.objects.get()
    for path in ("", "progress/", "download/"):
        assert cs.get(f"/reports/exports/{job.pk}/{path}").status_code == 404, path
    # The live dashboard keeps to membership (any role runs a show): unchanged.
    assert cs.get("/dashboard/").status_code == 200
    home = cs.get("/admin/").content.decode()  # the back office's shortcuts: no link to a 403
    assert 'href="/dashboard/"' in home and 'href="/reports/"' not in home and 'href="/reports/slots/"' not in home


@pytest.mark.parametrize("role", [roles.OWNER, roles.OPERATOR, roles.ANALYST])
def test_roles_with_the_reports_see_every_page_and_export(merchant, report, role, oncommit) -> None:  # type: ignore[no-untyped-def]
    c = member(merchant, role)
    show = f"/reports/sessions/{report.session_id}/"
    for path in (*PAGES, show):
        assert c.get(path).status_code == 200, (role, path)
    assert 'href="/reports/"' in c.get("/admin/").content.decode()
    with oncommit(execute=True):
        r = c.post(f"{show}export/", {"format": "xlsx"})
    assert r.status_code == 302
    job = ReportExport.objects.get()
    assert job.status == "done" and c.get(f"/reports/exports/{job.pk}/download/").status_code == 200


def test_a_login_sees_reports_only_where_its_role_has_them(merchant, other_merchant, oncommit) -> None:  # type: ignore[no-untyped-def]
    mine = rollup_session(make_history(merchant, seed=6, n_orders=20).pk)
    theirs = rollup_session(make_history(other_merchant, seed=7, n_orders=20).pk)
    assert mine is not None and theirs is not None
    c = member(merchant, roles.ANALYST, name="both")
    merchants.staff_create(merchant=other_merchant, username="both", password="", role=roles.CUSTOMER_SERVICE)
    assert c.get(f"/reports/sessions/{mine.session_id}/").status_code == 200
    assert c.get(f"/reports/sessions/{theirs.session_id}/").status_code == 404  # no reports in that shop
    index = c.get("/reports/").content.decode()
    assert f"/reports/sessions/{mine.session_id}/" in index and f"/reports/sessions/{theirs.session_id}/" not in index
    assert c.get(f"/reports/slots/?merchant={other_merchant.pk}").status_code == 404
    with oncommit(execute=True):
        assert c.post(f"/reports/sessions/{theirs.session_id}/export/", {"format": "csv"}).status_code == 404
        assert c.post("/reports/slots/export/", {"format": "csv", "merchant": other_merchant.pk}).status_code == 404
    assert not ReportExport.objects.exists()
    root = Client()
    root.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456789"))
    for r in (mine, theirs):
        assert root.get(f"/reports/sessions/{r.session_id}/").status_code == 200


def test_a_login_of_no_shop_still_gets_the_no_shop_page() -> None:
    c = Client(HTTP_ACCEPT_LANGUAGE="en")
    c.force_login(get_user_model().objects.create_user("nobody", password="pw-123456789", is_staff=True))
    for path in PAGES:
        r = c.get(path)
        assert r.status_code == 403 and b"No shop for this login" in r.content, path


# --- channel names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "names"),
    [
        ("en", {"storefront": "Storefront", "douyin": "Douyin"}),
        ("zh-hans", {"storefront": "直播间店铺", "douyin": "抖音"}),
    ],
)
def test_the_channels_table_names_each_channel_on_the_server(merchant, report, language, names) -> None:  # type: ignore[no-untyped-def]
    html = member(merchant, roles.OWNER, language=language).get(f"/reports/sessions/{report.session_id}/")
    assert html.status_code == 200 and html["Content-Language"] == language
    table = html.content.decode().split('data-table="channels"')[1].split("</table>")[0]
    codes = [c["channel"] for c in report.figures["channels"]]
    assert set(names) <= set(codes), codes  # the history sells in the storefront and on Douyin
    for code, name in names.items():
        assert f'<span data-channel="{code}">{name}</span>' in table, (code, table)
    assert f">{codes[0]}<" not in table  # no raw code left for a script to replace


# --- bad days ----------------------------------------------------------------------------------


@pytest.mark.parametrize("since", ["0001-01-01", "9999-12-31", "1999-12-31", "2100-01-01"])
def test_the_slots_api_answers_a_day_out_of_range_with_a_400(merchant, api, since) -> None:  # type: ignore[no-untyped-def]
    r = api.get(f"/api/v1/reports/slots?since={since}")
    assert r.status_code == 400, r.content
    body = r.json()
    assert body["code"] == "invalid" and "since" in body["extra"]["fields"], body


def test_the_slots_api_takes_the_first_and_last_days_of_the_range(merchant, report, api) -> None:  # type: ignore[no-untyped-def]
    assert api.get("/api/v1/reports/slots?since=2000-01-01").json()["shows"] == 1
    assert api.get("/api/v1/reports/slots?since=2099-12-31").json()["shows"] == 0


def test_the_forecast_answers_a_start_out_of_range_with_a_400(merchant, report, api) -> None:  # type: ignore[no-untyped-def]
    code = report.figures["listings"][0]["sku"]
    for starts_at in ("0001-01-01T00:00:00%2B14:00", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00Z"):
        r = api.get(f"/api/v1/reports/forecast?sku={code}&streamer=A&starts_at={starts_at}")
        assert r.status_code == 400 and r.json()["code"] == "invalid", (starts_at, r.content)
        assert "starts_at" in r.json()["extra"]["fields"]
    c = member(merchant, roles.OWNER)
    for day in ("0001-01-01", "9999-12-31"):
        r = c.get(f"/reports/forecast/?sku={code}&streamer=A&date={day}&time=00:00&hours=2")
        assert r.status_code == 400 and 'data-error="date"' in r.content.decode(), day


# --- the forecast page's defaults ---------------------------------------------------------------


def forecast_of(html: str) -> str:
    """The page's forecast card (the suggestions below it name SKUs too)."""
    return html.split("data-forecast>")[1].split("</section>")[0]


def last_show(merchant) -> SessionReport:  # type: ignore[no-untyped-def]
    return SessionReport.objects.filter(merchant=merchant).order_by("-starts_at", "-session_id").first()


def test_a_plain_visit_to_the_forecast_page_is_never_a_400(history, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    c = member(history, roles.OWNER)
    last = last_show(history)
    codes = list(dict.fromkeys(li["sku"] for li in last.figures["listings"]))
    assert len(codes) >= 3

    # The last show ran longer than the form allows: the length is brought to the maximum, and forecast.
    SessionReport.objects.filter(pk=last.pk).update(hours_on_air=Decimal("14.5"))
    assert plan_defaults(merchant_id=history.pk).hours == 14.5  # type: ignore[union-attr]
    r = c.get("/reports/forecast/")
    html = r.content.decode()
    assert r.status_code == 200 and "data-error" not in html
    assert 'name="hours" value="12.00"' in html
    assert all(f'data-sku="{code}"' in forecast_of(html) for code in codes)  # the defaults' forecast is shown

    # More SKUs than a show may have: the first ones are planned, and forecast.
    monkeypatch.setattr(ForecastForm, "MAX_SKUS", 2)
    r = c.get("/reports/forecast/")
    html = r.content.decode()
    assert r.status_code == 200 and "data-error" not in html
    assert [code for code in codes if f'value="{code}" checked' in html] == codes[:2]
    assert [code for code in codes if f'data-sku="{code}"' in forecast_of(html)] == codes[:2]
    monkeypatch.undo()

    # The last show had no listings: nothing to forecast yet, and no error either.
    figures = {**last.figures, "listings": []}
    SessionReport.objects.filter(pk=last.pk).update(figures=figures, hours_on_air=Decimal("2"))
    r = c.get("/reports/forecast/")
    html = r.content.decode()
    assert r.status_code == 200 and "data-error" not in html and "checked" not in html
    assert "Pick the SKUs, streamer and slot of a planned show." in forecast_of(html)
    assert "data-sku=" not in forecast_of(html)

    # The user's own plan is still checked: a 400 naming the field.
    r = c.get("/reports/forecast/?streamer=A&date=2026-12-20&time=20:00&hours=2")
    assert r.status_code == 400 and 'data-error="sku"' in r.content.decode()
    r = c.get(f"/reports/forecast/?sku={codes[0]}&streamer=A&date=2026-12-20&time=20:00&hours=14.5")
    assert r.status_code == 400 and 'data-error="hours"' in r.content.decode()


def test_the_forecast_page_with_no_show_yet_is_an_empty_plan(merchant) -> None:  # type: ignore[no-untyped-def]
    LiveSession.objects.create(merchant=merchant, title="还没开播")
    r = member(merchant, roles.OWNER).get("/reports/forecast/")
    assert r.status_code == 200 and "data-error" not in r.content.decode()
