"""The dashboard: who gets it, what it counts, and that charts, tables and downloads never count a
report or advisory the user may not see."""

import csv
import datetime as dt
import io
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from renkei.directory.tests.test_views import signed_in
from renkei.sharing.choices import Tlp
from renkei.sharing.dashboard import DATASETS, PALETTE, _nice_step, bar_chart
from renkei.sharing.delivery import advisory_recipient_memberships
from renkei.sharing.models import Report
from renkei.sharing.selectors import (
    MonthlyTrend,
    Series,
    reports_by_month_and_cause,
    reports_by_month_and_sector,
    trend_months,
    unacknowledged_advisories,
)
from renkei.sharing.services import advisory_acknowledge
from renkei.sharing.tests.factories import advisory_for, report_for

pytestmark = pytest.mark.django_db

INDEX = "/dashboard/"


def export_url(dataset: str, fmt: str, **query) -> str:
    url = reverse("dashboard:export", kwargs={"dataset": dataset, "fmt": fmt})
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def csv_rows(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def xlsx_rows(response) -> list[list]:
    workbook = load_workbook(io.BytesIO(response.content), read_only=True)
    return [list(row) for row in workbook.active.iter_rows(values_only=True)]


@pytest.fixture
def reports(community):
    """Bank A: an AMBER intrusion and a RED report named to the national centre only; the hospital: a
    blackout. Bank B: a GREEN malware report detected 40 days ago (overdue for its final report)."""
    forty_days_ago = timezone.now() - dt.timedelta(days=40)
    return {
        "bank_a": report_for(community.bank_a_reporter, title="不正アクセス"),
        "red": report_for(
            community.bank_a_reporter,
            title="極秘: 内部不正",
            tlp=Tlp.RED,
            recipients=[community.nisc_coordinator],
            cause="intentional.insider",
        ),
        "hospital": report_for(community.hospital_reporter, title="停電", cause="environmental.disaster"),
        "bank_b_old": report_for(
            community.bank_b_reporter,
            title='=HYPERLINK("http://evil.example")',
            tlp=Tlp.GREEN,
            cause="intentional.malware",
            detected_at=forty_days_ago,
            occurred_at=forty_days_ago - dt.timedelta(hours=1),
        ),
    }


# --- Who may see it -----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["bank_a_reporter", "bank_a_admin", "ceptoar_officer", "hospital_reporter"])
def test_everyone_but_the_centre_and_ministries_gets_404(community, who):
    client = signed_in(getattr(community, who))
    missing = client.get("/dashboard/no-such-page/")
    assert client.get(INDEX).status_code == 404 == missing.status_code
    for dataset in DATASETS:
        assert client.get(export_url(dataset, "csv")).status_code == 404


def test_anonymous_people_are_sent_to_sign_in(community):
    from django.test import Client

    response = Client().get(INDEX)
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_unknown_dataset_or_format_is_404(community):
    client = signed_in(community.nisc_coordinator)
    assert client.get(export_url("people", "csv")).status_code == 404
    assert client.get(export_url("reports", "pdf")).status_code == 404


# --- What it counts -----------------------------------------------------------------------------------


def test_trends_count_only_visible_reports(community, reports):
    now = timezone.now()
    nisc = reports_by_month_and_sector(Report.objects.restrict(community.nisc_coordinator), now=now)
    assert {s.code: s.total for s in nisc.series} == {"finance": 3, "medical": 1}
    fsa = reports_by_month_and_sector(Report.objects.restrict(community.fsa_coordinator), now=now)
    # The RED report was named to the national centre only.
    assert {s.code: s.total for s in fsa.series} == {"finance": 2}
    mhlw = reports_by_month_and_sector(Report.objects.restrict(community.mhlw_coordinator), now=now)
    assert {s.code: s.total for s in mhlw.series} == {"medical": 1}


def test_causes_are_counted_under_their_top_level(community, reports):
    trend = reports_by_month_and_cause(Report.objects.restrict(community.nisc_coordinator))
    assert {s.code: s.total for s in trend.series} == {"intentional": 3, "environmental": 1}
    assert trend.total == 4


def test_months_are_the_last_twelve_in_japan_time(community, reports):
    # 2026-03-31 20:00 UTC is already April in Tokyo.
    months = trend_months(dt.datetime(2026, 3, 31, 20, 0, tzinfo=dt.UTC))
    assert months[0] == dt.date(2025, 5, 1)
    assert months[-1] == dt.date(2026, 4, 1)
    assert len(months) == 12
    trend = reports_by_month_and_sector(Report.objects.all())
    this_month = timezone.localdate().replace(day=1)
    finance = next(s for s in trend.series if s.code == "finance")
    assert finance.counts[trend.months.index(this_month)] >= 2
    assert sum(trend.month_totals) == trend.total == 4


def test_reports_detected_before_the_window_are_not_counted(community, reports):
    Report.objects.filter(pk=reports["hospital"].pk).update(
        detected_at=timezone.now() - dt.timedelta(days=400)
    )
    trend = reports_by_month_and_sector(Report.objects.all())
    assert "medical" not in {s.code for s in trend.series}


def test_page_shows_charts_tables_overdue_and_pending_advisories(community, reports):
    advisory = advisory_for(
        community.nisc_coordinator,
        title="VPN 機器の脆弱性",
        sectors=[community.finance],
        ack_required=True,
        ack_due=timezone.now() + dt.timedelta(days=1),
    )
    response = signed_in(community.nisc_coordinator).get(INDEX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("<svg viewBox") == 2
    assert 'role="img"' in html
    assert "<table" in html
    # The CSP forbids inline styles and scripts.
    assert "style=" not in html
    assert "<script>" not in html
    assert "<style" not in html
    assert str(reports["bank_b_old"].pk) in html  # overdue: its final report was due after 30 days
    assert advisory.title in html
    assert response.context["overdue_count"] == 1
    assert response.context["advisory_count"] == 1


def test_ministry_page_leaves_out_what_it_may_not_see(community, reports):
    response = signed_in(community.mhlw_coordinator).get(INDEX)
    html = response.content.decode()
    assert response.status_code == 200
    for hidden in ("不正アクセス", "極秘", "HYPERLINK"):
        assert hidden not in html
    assert response.context["overdue_count"] == 0
    assert response.context["figures"][0].trend.total == 1


def test_page_query_count_does_not_grow_with_reports(community, reports):
    client = signed_in(community.nisc_coordinator)
    client.get(INDEX)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(INDEX).status_code == 200
        return len(captured)

    before = queries()
    for number in range(5):
        report_for(community.hospital_reporter, title=f"障害 {number}")
        advisory_for(community.nisc_coordinator, sectors=[community.medical], ack_required=True)
    assert queries() == before


# --- Unacknowledged advisories -------------------------------------------------------------------------


def test_pending_organizations_match_the_delivery_audience(community, reports):
    advisory = advisory_for(community.nisc_coordinator, sectors=[community.finance], ack_required=True)
    reached = set(advisory_recipient_memberships(advisory).values_list("organization_id", flat=True)) - {
        advisory.issuer_id
    }
    row = unacknowledged_advisories(community.nisc_coordinator).get(pk=advisory.pk)
    assert row.recipient_count == row.pending_count == len(reached)
    assert {community.bank_a.pk, community.bank_b.pk} <= reached
    advisory_acknowledge(user=community.bank_a_reporter, advisory=advisory)
    row = unacknowledged_advisories(community.nisc_coordinator).get(pk=advisory.pk)
    assert row.pending_count == len(reached) - 1
    for organization_id in reached - {community.bank_a.pk}:
        user = community.bank_b_reporter if organization_id == community.bank_b.pk else None
        if user is None:
            user = (
                advisory_recipient_memberships(advisory).filter(organization_id=organization_id).first().user
            )
        advisory_acknowledge(user=user, advisory=advisory)
    assert not unacknowledged_advisories(community.nisc_coordinator).filter(pk=advisory.pk).exists()


def test_red_advisories_wait_only_for_the_named_peoples_organizations(community):
    advisory = advisory_for(
        community.nisc_coordinator,
        tlp=Tlp.RED,
        people=[community.fsa_coordinator, community.bank_a_reporter],
        ack_required=True,
    )
    row = unacknowledged_advisories(community.nisc_coordinator).get(pk=advisory.pk)
    assert row.recipient_count == 2


def test_advisories_not_requiring_acknowledgement_are_left_out(community):
    advisory_for(community.nisc_coordinator, sectors=[community.finance])
    assert not unacknowledged_advisories(community.nisc_coordinator).exists()


def test_acknowledgement_figures_belong_to_the_issuers_chain(community):
    advisory_for(community.nisc_coordinator, sectors=[community.finance], ack_required=True)
    # The FSA receives the advisory but did not issue it: the table is not theirs.
    assert not unacknowledged_advisories(community.fsa_coordinator).exists()
    assert unacknowledged_advisories(community.nisc_coordinator).count() == 1


# --- Downloads -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_report_export_contains_exactly_the_visible_reports(community, reports, fmt):
    for user in (community.nisc_coordinator, community.fsa_coordinator, community.mhlw_coordinator):
        response = signed_in(user).get(export_url("reports", fmt))
        assert response.status_code == 200
        assert "attachment" in response["Content-Disposition"]
        rows = csv_rows(response) if fmt == "csv" else xlsx_rows(response)
        exported = {row[0] for row in rows[1:]}
        assert exported == {str(pk) for pk in Report.objects.restrict(user).values_list("pk", flat=True)}


def test_report_export_applies_search_and_filters_within_restrict(community, reports):
    client = signed_in(community.fsa_coordinator)
    rows = csv_rows(client.get(export_url("reports", "csv", q="不正", cause="intentional")))
    # The RED insider report also matches 不正 but is not the FSA's to see; the hospital's is not finance.
    assert {row[0] for row in rows[1:]} == {str(reports["bank_a"].pk), str(reports["bank_b_old"].pk)}
    rows = csv_rows(client.get(export_url("reports", "csv", q="不正", tlp="GREEN")))
    assert [row[0] for row in rows[1:]] == [str(reports["bank_b_old"].pk)]
    assert client.get(export_url("reports", "csv", sector="nowhere")).status_code == 400
    assert client.get(export_url("reports", "csv", since="yesterday")).status_code == 400


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_figure_exports_match_the_page(community, reports, fmt):
    client = signed_in(community.fsa_coordinator)
    for dataset, index in (("sectors", 0), ("causes", 1)):
        trend = client.get(INDEX).context["figures"][index].trend
        response = client.get(export_url(dataset, fmt))
        rows = csv_rows(response) if fmt == "csv" else xlsx_rows(response)
        assert len(rows) == len(trend.series) + 2
        body = {row[1]: row for row in rows[1:-1]}
        for series in trend.series:
            assert [int(value) for value in body[series.code][2:-1]] == series.counts
        assert int(rows[-1][-1]) == trend.total


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_overdue_and_advisory_exports(community, reports, fmt):
    advisory_for(community.nisc_coordinator, title="=1+1", sectors=[community.finance], ack_required=True)
    client = signed_in(community.nisc_coordinator)
    overdue = client.get(export_url("overdue", fmt))
    rows = csv_rows(overdue) if fmt == "csv" else xlsx_rows(overdue)
    assert [row[0] for row in rows[1:]] == [str(reports["bank_b_old"].pk)]
    advisories = client.get(export_url("advisories", fmt))
    rows = csv_rows(advisories) if fmt == "csv" else xlsx_rows(advisories)
    assert len(rows) == 2
    # Ministries see no overdue report outside their sectors.
    mhlw_rows = csv_rows(signed_in(community.mhlw_coordinator).get(export_url("overdue", "csv")))
    assert len(mhlw_rows) == 1


def test_exports_defuse_spreadsheet_formulas(community, reports):
    client = signed_in(community.nisc_coordinator)
    rows = csv_rows(client.get(export_url("reports", "csv")))
    title = next(row[1] for row in rows if row[0] == str(reports["bank_b_old"].pk))
    assert title == "'" + reports["bank_b_old"].title
    workbook = load_workbook(io.BytesIO(client.get(export_url("reports", "xlsx")).content))
    cells = [row for row in workbook.active.iter_rows() if row[0].value == str(reports["bank_b_old"].pk)]
    assert cells[0][1].data_type == "s"
    assert cells[0][1].value.endswith('HYPERLINK("http://evil.example")')


def test_exports_are_in_the_users_language(community, reports):
    user = community.nisc_coordinator
    user.language = "en"
    user.save()
    rows = csv_rows(signed_in(user).get(export_url("reports", "csv")))
    assert rows[0][:2] == ["ID", "Title"]
    user.language = "ja"
    user.save()
    header = csv_rows(signed_in(user).get(export_url("reports", "csv")))[0]
    assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", "".join(header))


def test_chart_stacks_the_largest_series_and_groups_the_rest():
    months = trend_months(months=3)
    series = [Series(f"s{i}", f"分野{i}", [i, 0, 1]) for i in range(10)]
    chart = bar_chart(MonthlyTrend(months, series))
    assert len(chart.legend) == len(PALETTE)
    assert chart.legend[0].label == "分野9"
    assert chart.legend[-1].fill == PALETTE[-1]
    # First month: 45 reports, scale 0–60 in steps of 20; the stack's height is 45/60 of the plot.
    assert [tick.text for tick in chart.ticks] == ["0", "20", "40", "60"]
    first = [bar for bar in chart.bars if bar.x == chart.bars[0].x]
    assert sum(bar.height for bar in first) == pytest.approx((256 - 16) * 45 / 60, abs=0.5)
    # Empty months draw nothing; every bar carries its own label.
    assert all(bar.height > 0 and bar.title for bar in chart.bars)
    assert len(chart.month_labels) == 3


def test_nice_steps():
    assert [_nice_step(n) for n in (1, 4, 5, 8, 9, 40, 41, 190)] == [1, 1, 2, 2, 5, 10, 20, 50]
