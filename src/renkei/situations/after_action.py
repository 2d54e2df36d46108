"""The after-action report of an ended situation: its timeline, its metrics, who joined, its findings;
as an HTML page and as a PDF, in Japanese or English.

The PDF embeds Noto Sans JP from the `pylopdf-fonts-jp` package (installed with Renkei, SIL OFL), so a
machine without Japanese fonts still produces a PDF every reader shows without tofu boxes.
"""

import datetime as dt

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from fpdf import FPDF
from pylopdf_fonts_jp import sans_path

from renkei.situations import selectors
from renkei.situations.models import Situation

FONT = "NotoSansJP"
# Wide enough for Japanese lines without justification stretching mixed English words.
LINE_HEIGHT = 6


def duration_text(value: dt.timedelta | None) -> str:
    if value is None:
        return _("did not happen")
    minutes = int(value.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return _("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}
    return _("%(minutes)d min") % {"minutes": minutes}


def local_time(value: dt.datetime | None) -> str:
    return date_format(timezone.localtime(value), "Y-m-d H:i") if value else "-"


def after_action_context(situation: Situation, viewer) -> dict:
    """What both the page and the PDF show (call inside the language the report is wanted in)."""
    metrics = selectors.after_action_metrics(situation)
    return {
        "situation": situation,
        "metrics": [
            (_("First report to proposal"), duration_text(metrics["first_report_to_proposal"])),
            (_("Proposal to declaration in force"), duration_text(metrics["proposal_to_declaration"])),
            (
                _("Declaration to every acknowledgement"),
                duration_text(metrics["declaration_to_all_acknowledged"]),
            ),
            (_("Organizations joined"), str(metrics["joined"])),
            (_("Acknowledged"), str(metrics["acknowledged"])),
        ],
        "participants": selectors.participants(situation),
        "decisions": list(situation.decisions.select_related("level", "requested_by", "approved_by")),
        "timeline": selectors.timeline(situation, viewer),
        "findings": list(situation.findings.select_related("author")),
    }


class _Report(FPDF):
    def footer(self):
        self.set_y(-12)
        self.set_font(FONT, size=8)
        self.cell(0, 6, f"{self.page_no()}", align="C")


def after_action_pdf(context: dict) -> bytes:
    """The after-action report as PDF bytes (call inside the language the report is wanted in)."""
    situation = context["situation"]
    pdf = _Report(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_font(FONT, "", str(sans_path()))
    pdf.set_title(situation.title)
    pdf.add_page()

    def heading(text: str) -> None:
        pdf.ln(3)
        pdf.set_font(FONT, size=13)
        pdf.multi_cell(0, LINE_HEIGHT + 2, text, align="L", wrapmode="CHAR", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(FONT, size=10)

    def line(text: str) -> None:
        pdf.multi_cell(0, LINE_HEIGHT, text, align="L", wrapmode="CHAR", new_x="LMARGIN", new_y="NEXT")

    pdf.set_font(FONT, size=16)
    pdf.multi_cell(0, 9, _("After-action report"), align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(0, 9, situation.title, align="L", wrapmode="CHAR", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, size=10)
    line(f"{_('Level')}: {situation.level}    {_('Status')}: {situation.get_status_display()}")
    line(
        f"{_('Declared at')}: {local_time(situation.created_at)}    {_('In force since')}: "
        f"{local_time(situation.activated_at)}    {_('Ended at')}: {local_time(situation.ended_at)}"
    )

    heading(_("Metrics"))
    for label, value in context["metrics"]:
        line(f"{label}: {value}")

    heading(_("Decisions"))
    for decision in context["decisions"]:
        approved = (
            _("approved by %(person)s at %(time)s")
            % {"person": decision.approved_by, "time": local_time(decision.approved_at)}
            if decision.approved_by
            else decision.get_status_display()
        )
        line(f"{local_time(decision.requested_at)}  {decision} — {decision.requested_by}; {approved}")
        line(f"    {_('Reason')}: {decision.reason}")

    heading(_("Who joined"))
    for row in context["participants"]:
        participant, acknowledgement = row["participant"], row["acknowledgement"]
        acknowledged = (
            _("acknowledged at %(time)s") % {"time": local_time(acknowledgement.created_at)}
            if acknowledgement
            else _("never acknowledged")
        )
        joined = local_time(participant.joined_at)
        line(f"{participant.organization} (TLP:{participant.max_tlp}) — {joined}; {acknowledged}")

    heading(_("Timeline"))
    for item in context["timeline"]:
        line(f"{local_time(item.at)}  {item.text}")

    heading(_("Findings"))
    for finding in context["findings"]:
        line(f"・{finding.text} ({finding.author})")
    if not context["findings"]:
        line(_("No findings were recorded."))
    return bytes(pdf.output())
