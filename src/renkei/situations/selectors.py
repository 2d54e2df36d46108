"""What the situation room shows, read for one viewer (reports through the access function)."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q
from django.utils.translation import gettext as _

from renkei.directory.models import Sector
from renkei.sharing.models import Acknowledgement, Advisory, Report
from renkei.situations.choices import DecisionStatus, LogKind
from renkei.situations.models import Situation


@dataclass
class TimelineItem:
    at: datetime
    kind: str  # report, advisory, decision, approval, joined, left, acknowledged, note, question
    text: str
    report: Report | None = None
    advisory: Advisory | None = None


def participants(situation: Situation) -> list[dict]:
    """Everyone who joined, with whether their organization acknowledged its notice."""
    rows = list(situation.participants.select_related("organization", "notice").order_by("joined_at", "pk"))
    acknowledged = {
        (ack.advisory_id, ack.organization_id): ack
        for ack in Acknowledgement.objects.filter(
            advisory_id__in=[row.notice_id for row in rows if row.notice_id]
        ).select_related("user")
    }
    return [
        {"participant": row, "acknowledgement": acknowledged.get((row.notice_id, row.organization_id))}
        for row in rows
    ]


MAP_COLUMNS, MAP_CELL_WIDTH, MAP_CELL_HEIGHT = 5, 100, 40


def _visible_reports(situation: Situation, viewer):
    return Report.objects.restrict(viewer).filter(pk__in=situation.reports.values("pk"))


def sector_map(situation: Situation, viewer) -> list[dict]:
    """Every sector as a tile of the room's map, marked affected when the situation covers it or one
    of its reports the viewer may see comes from it."""
    covered = set(situation.sectors.values_list("pk", flat=True))
    reporting = set(_visible_reports(situation, viewer).values_list("sector_id", flat=True))
    return [
        {
            "sector": sector,
            "affected": situation.nationwide or sector.pk in covered or sector.pk in reporting,
            "reports": sector.pk in reporting,
            "x": index % MAP_COLUMNS * MAP_CELL_WIDTH,
            "y": index // MAP_COLUMNS * MAP_CELL_HEIGHT,
        }
        for index, sector in enumerate(Sector.objects.order_by("display_order"))
    ]


def timeline(situation: Situation, viewer) -> list[TimelineItem]:
    """Reports, decisions, joins, acknowledgements and the log, oldest first. A report the viewer may
    not see appears as a report without its title."""
    visible = set(
        Report.objects.restrict(viewer)
        .filter(pk__in=situation.reports.values("pk"))
        .values_list("pk", flat=True)
    )
    items = []
    for link in situation.report_links.select_related("report", "report__sector"):
        report = link.report
        shown = report.pk in visible
        items.append(
            TimelineItem(
                link.added_at,
                "report",
                report.title
                if shown
                else _("A report from the %(sector)s sector") % {"sector": report.sector},
                report if shown else None,
            )
        )
    notices = situation.participants.exclude(notice=None).values("notice_id")
    advisories = (
        Advisory.objects.restrict(viewer)
        .filter(Q(pk__in=notices) | Q(source_reports__in=situation.reports.all()))
        .distinct()
    )
    for advisory in advisories.select_related("issuer"):
        items.append(
            TimelineItem(
                advisory.created_at, "advisory", f"{advisory.issuer}: {advisory.title}", advisory=advisory
            )
        )
    for decision in situation.decisions.select_related("level", "requested_by", "approved_by"):
        items.append(
            TimelineItem(
                decision.requested_at,
                "decision",
                _("%(person)s asked: %(decision)s — %(reason)s")
                % {"person": decision.requested_by, "decision": decision, "reason": decision.reason},
            )
        )
        if decision.status == DecisionStatus.APPROVED:
            items.append(
                TimelineItem(
                    decision.approved_at,
                    "approval",
                    _("%(person)s approved: %(decision)s")
                    % {"person": decision.approved_by, "decision": decision},
                )
            )
    for row in participants(situation):
        participant, acknowledgement = row["participant"], row["acknowledgement"]
        items.append(
            TimelineItem(
                participant.joined_at, "joined", _("%(org)s joined") % {"org": participant.organization}
            )
        )
        if acknowledgement:
            items.append(
                TimelineItem(
                    acknowledgement.created_at,
                    "acknowledged",
                    _("%(org)s acknowledged (%(person)s)")
                    % {"org": participant.organization, "person": acknowledgement.user},
                )
            )
        if participant.left_at:
            items.append(
                TimelineItem(
                    participant.left_at, "left", _("%(org)s left") % {"org": participant.organization}
                )
            )
    for entry in situation.log.select_related("author", "organization"):
        items.append(
            TimelineItem(
                entry.created_at,
                entry.kind,
                f"{entry.organization or ''} {entry.author}: {entry.text}".strip(),
            )
        )
    return sorted(items, key=lambda item: item.at)


def open_questions(situation: Situation):
    return situation.log.filter(kind=LogKind.QUESTION, answered_at__isnull=True).select_related("author")


def after_action_metrics(situation: Situation) -> dict:
    """Time from the first report to the proposal, from the proposal to the declaration in force, and
    from that to the last acknowledgement (None where a step did not happen)."""
    first_report = situation.reports.order_by("created_at").values_list("created_at", flat=True).first()
    proposed = situation.proposal.created_at if situation.proposal else None
    in_force = situation.activated_at
    acks = [row["acknowledgement"] for row in participants(situation)]
    all_acknowledged = max((a.created_at for a in acks if a), default=None) if acks and all(acks) else None
    return {
        "first_report_to_proposal": (proposed - first_report) if proposed and first_report else None,
        "proposal_to_declaration": (in_force - proposed) if in_force and proposed else None,
        "declaration_to_all_acknowledged": (all_acknowledged - in_force)
        if all_acknowledged and in_force
        else None,
        "joined": len(acks),
        "acknowledged": sum(1 for a in acks if a),
    }
