"""The trends dashboard for the national centre and the ministries, and its downloads.

Everyone else gets the same 404 as for a page that does not exist. Every figure is an aggregation
over `restrict(user)` (see selectors.py). Charts are drawn here as SVG bars with presentation
attributes only (the content security policy forbids inline styles and scripts), each followed by
a table of the same numbers for screen readers and copying.
"""

import csv
import datetime as dt
import io
import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from renkei.sharing.choices import Tlp
from renkei.sharing.search import filter_reports, search_reports
from renkei.sharing.selectors import (
    MonthlyTrend,
    may_see_dashboard,
    overdue_reports_visible_to,
    reports_by_month_and_cause,
    reports_by_month_and_sector,
    reports_visible_to,
    unacknowledged_advisories,
)

# Colour-blind-safe hues (Okabe–Ito, darkened where needed for contrast on white); the last is "other".
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#8C6D00", "#4D8FBF", "#882255", "#6B6B6B"]
LIST_LIMIT = 50
# Spreadsheet programs stop at 1,048,576 rows; the CSV download has no limit.
XLSX_MAX_ROWS = 1_048_575
# A cell starting with one of these is run as a formula by spreadsheet programs.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _dashboard_user(request):
    if not may_see_dashboard(request.user):
        raise Http404(_("Not found."))
    return request.user


# --- Charts ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    fill: str
    title: str


@dataclass(frozen=True)
class AxisLabel:
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class LegendItem:
    fill: str
    label: str


@dataclass(frozen=True)
class BarChart:
    """A stacked bar chart: one bar per month, one colour per series (the largest series, the rest
    as "other")."""

    width: int
    height: int
    plot_left: int
    plot_right: int
    plot_bottom: int
    bars: list[Bar]
    month_labels: list[AxisLabel]
    ticks: list[AxisLabel]
    legend: list[LegendItem]


def _nice_step(maximum: int, ticks: int = 4) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50 … that covers `maximum` in `ticks` steps."""
    magnitude = 1
    while True:
        for step in (magnitude, 2 * magnitude, 5 * magnitude):
            if step * ticks >= maximum:
                return step
        magnitude *= 10


def month_label(month) -> str:
    return formats.date_format(month, "YEAR_MONTH_FORMAT")


def bar_chart(trend: MonthlyTrend) -> BarChart:
    """Geometry of the stacked bars, in a 720×300 box: the largest series get a colour each, the
    rest are stacked together as "other" (the table lists them all)."""
    width, height = 720, 300
    left, right, top, bottom = 48, 712, 16, 256
    ranked = sorted(trend.series, key=lambda s: -s.total)
    shown = ranked[: len(PALETTE) - 1] if len(ranked) > len(PALETTE) else ranked
    rest = ranked[len(shown) :]
    layers = [(s.label, s.counts, PALETTE[i]) for i, s in enumerate(shown)]
    if rest:
        other = [sum(s.counts[i] for s in rest) for i in range(len(trend.months))]
        layers.append((_("Other"), other, PALETTE[-1]))
    highest = max(trend.month_totals, default=0)
    step = _nice_step(highest or 1)
    scale_max = step * max(1, math.ceil(highest / step))
    slot = (right - left) / len(trend.months)
    bar_width = slot * 0.7
    bars, labels = [], []
    for index, month in enumerate(trend.months):
        x = left + slot * index + (slot - bar_width) / 2
        base = bottom
        for label, counts, fill in layers:
            count = counts[index]
            if not count:
                continue
            bar_height = (bottom - top) * count / scale_max
            base -= bar_height
            bars.append(
                Bar(
                    round(x, 1),
                    round(base, 1),
                    round(bar_width, 1),
                    round(bar_height, 1),
                    fill,
                    f"{month_label(month)} {label}: {count}",
                )
            )
        labels.append(AxisLabel(round(x + bar_width / 2, 1), bottom + 18, f"{month:%y/%m}"))
    ticks = [
        AxisLabel(left - 6, round(bottom - (bottom - top) * value / scale_max, 1), str(value))
        for value in range(0, scale_max + 1, step)
    ]
    legend = [LegendItem(fill, label) for label, _counts, fill in layers]
    return BarChart(width, height, left, right, bottom, bars, labels, ticks, legend)


# --- Page --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """A chart with its table and downloads."""

    key: str
    title: str
    description: str
    series_heading: str
    trend: MonthlyTrend
    chart: BarChart


def _figures(user, now=None) -> list[Figure]:
    reports = reports_visible_to(user)
    by_sector = reports_by_month_and_sector(reports, now=now)
    by_cause = reports_by_month_and_cause(reports, now=now)
    return [
        Figure(
            "sectors",
            _("Reports per month by sector"),
            _("Reports you may see, by month of detection over the last 12 months, stacked by sector."),
            _("Sector"),
            by_sector,
            bar_chart(by_sector),
        ),
        Figure(
            "causes",
            _("Reports per month by cause"),
            _("Reports you may see, by month of detection over the last 12 months, stacked by cause."),
            _("Cause"),
            by_cause,
            bar_chart(by_cause),
        ),
    ]


@login_required
def index(request):
    user = _dashboard_user(request)
    overdue = overdue_reports_visible_to(user)
    advisories = unacknowledged_advisories(user)
    context = {
        "figures": _figures(user),
        "overdue": overdue[:LIST_LIMIT],
        "overdue_count": overdue.count(),
        "advisories": advisories[:LIST_LIMIT],
        "advisory_count": advisories.count(),
        "list_limit": LIST_LIMIT,
        "nav_section": "dashboard",
    }
    return render(request, "sharing/dashboard/index.html", context)


# --- Downloads ---------------------------------------------------------------------------------------


def _trend_rows(figure: Figure) -> list[list]:
    trend = figure.trend
    return [
        [figure.series_heading, _("Code"), *[month_label(m) for m in trend.months], _("Total")],
        *([series.label, series.code, *series.counts, series.total] for series in trend.series),
        [_("Total"), "", *trend.month_totals, trend.total],
    ]


def _local(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""


REPORT_COLUMNS = (
    gettext_lazy("ID"),
    gettext_lazy("Title"),
    gettext_lazy("Reporting organization"),
    gettext_lazy("Sector"),
    gettext_lazy("Kind"),
    gettext_lazy("Status"),
    gettext_lazy("TLP"),
    gettext_lazy("Cause"),
    gettext_lazy("Detected at (JST)"),
    gettext_lazy("Submitted at (JST)"),
)


def _report_row(report) -> list:
    return [
        str(report.pk),
        report.title,
        report.organization.name,
        report.sector.code,
        report.kind,
        report.status,
        Tlp(report.tlp).label,
        report.cause.code,
        _local(report.detected_at),
        _local(report.created_at),
    ]


def _report_rows(reports) -> Iterator[list]:
    """The header now (in the request's language), the rows as the download streams."""
    header = [str(column) for column in REPORT_COLUMNS]
    return itertools.chain([header], (_report_row(r) for r in reports.iterator(chunk_size=2000)))


def _advisory_rows(user) -> list[list]:
    rows = [
        [
            _("ID"),
            _("Title"),
            _("Issuer"),
            _("TLP"),
            _("Acknowledge by (JST)"),
            _("Organizations"),
            _("Not yet acknowledged"),
        ]
    ]
    for advisory in unacknowledged_advisories(user):
        rows.append(
            [
                str(advisory.pk),
                advisory.title,
                advisory.issuer.name,
                Tlp(advisory.tlp).label,
                _local(advisory.ack_due),
                advisory.recipient_count,
                advisory.pending_count,
            ]
        )
    return rows


def visible_report_list(request, user):
    """The reports the user may see, narrowed by the report list's filters in the query string."""
    params = request.GET
    reports = search_reports(reports_visible_to(user), params.get("q"))
    reports = filter_reports(
        reports,
        sector=params.get("sector") or None,
        cause=params.get("cause") or None,
        tlp=params.get("tlp") or None,
        status=params.get("status") or None,
        since=_date_param(params, "since"),
        until=_date_param(params, "until"),
    )
    return reports.select_related("organization", "sector", "cause").order_by("-created_at", "pk")


def _date_param(params, name):
    value = params.get(name)
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValidationError({name: [_("Enter a date as YYYY-MM-DD.")]}) from None


def _safe(value):
    """Defuse spreadsheet formulas in text a user wrote (titles, names)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class _Echo:
    def write(self, value):
        return value


def _csv_lines(rows: Iterable[list]) -> Iterator[str]:
    # A byte-order mark, so that Excel opens the UTF-8 file with Japanese intact.
    yield "\ufeff"
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow([_safe(value) for value in row])


def _csv_response(rows: Iterable[list], filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


def _xlsx_response(rows: Iterable[list], filename: str, sheet_title: str) -> HttpResponse:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=sheet_title[:31])
    for number, row in enumerate(rows):
        if number > XLSX_MAX_ROWS:
            break
        cells = []
        for value in row:
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # text, never a formula
            cells.append(cell)
        sheet.append(cells)
    buffer = io.BytesIO()
    workbook.save(buffer)
    response = HttpResponse(
        buffer.getvalue(),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}.xlsx"'
    return response


DATASETS = ("sectors", "causes", "overdue", "advisories", "reports")


@login_required
def export(request, dataset: str, fmt: str):
    user = _dashboard_user(request)
    if dataset not in DATASETS or fmt not in ("csv", "xlsx"):
        raise Http404(_("Not found."))
    if dataset in ("sectors", "causes"):
        figure = next(f for f in _figures(user) if f.key == dataset)
        rows, title = _trend_rows(figure), figure.title
    elif dataset == "overdue":
        overdue = overdue_reports_visible_to(user).select_related("cause")
        rows, title = _report_rows(overdue), _("Overdue reports")
    elif dataset == "advisories":
        rows, title = _advisory_rows(user), _("Unacknowledged advisories")
    else:
        try:
            reports = visible_report_list(request, user)
        except ValidationError as error:
            return HttpResponseBadRequest(" ".join(error.messages), content_type="text/plain; charset=utf-8")
        rows, title = _report_rows(reports), _("Reports")
    filename = f"renkei-{dataset}-{timezone.localdate():%Y%m%d}"
    if fmt == "csv":
        return _csv_response(rows, filename)
    return _xlsx_response(rows, filename, title)
