"""Situations over the API: the national centre's proposals, declarations with a second person's
approval, and the situations a caller takes part in.

Reads go through `restrict` / `get_restricted_or_404`; decisions through situations/services.py,
which refuses anyone but the national centre's coordinators (403) and the asker approving (403).
"""

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Router, Status

from renkei.core.access import get_restricted_or_404, restrict
from renkei.core.schemas import ProblemOut
from renkei.directory.models import Sector
from renkei.sharing.api import FORBIDDEN_CODES, WRITE_ERRORS, service_errors
from renkei.sharing.models import Report
from renkei.situations import services
from renkei.situations.choices import DecisionKind, DecisionStatus, ProposalStatus
from renkei.situations.models import AlertLevel, Proposal, ProposalReport, Situation, SituationReport
from renkei.situations.schemas import DeclareIn, LevelChangeIn, ProposalOut, ReasonIn, SituationOut

router = Router(tags=["situations"])

# Refusals that concern who asks, not what was asked.
DECISION_FORBIDDEN = FORBIDDEN_CODES | {"not_decider", "same_person"}
READ_ERRORS = {401: ProblemOut, 404: ProblemOut}
DECISION_ERRORS = {404: ProblemOut, **WRITE_ERRORS}


def proposal_out(proposal: Proposal, visible: set) -> dict:
    return {
        "id": proposal.pk,
        "rule": proposal.rule.code,
        "rule_name": str(proposal.rule),
        "level": proposal.level.code,
        "status": proposal.status,
        "report_ids": [link.report_id for link in proposal.report_links.all() if link.report_id in visible],
        "sectors": [sector.code for sector in proposal.sectors.all()],
        "created_at": proposal.created_at,
        "updated_at": proposal.updated_at,
    }


def visible_report_ids(situations, viewer) -> dict[int, list]:
    """Situation id → the ids of its reports `viewer` may see, in one query for all of them."""
    links = SituationReport.objects.filter(
        situation__in=situations, report__in=restrict(Report.objects.all(), viewer)
    ).order_by("added_at", "pk")
    visible: dict[int, list] = {}
    for situation_id, report_id in links.values_list("situation_id", "report_id"):
        visible.setdefault(situation_id, []).append(report_id)
    return visible


def situation_out(situation: Situation, report_ids: list) -> dict:
    pending = next((d for d in situation.decisions.all() if d.status == DecisionStatus.PENDING), None)
    return {
        "id": situation.pk,
        "title": situation.title,
        "level": situation.level.code,
        "status": situation.status,
        "nationwide": situation.nationwide,
        "sectors": [sector.code for sector in situation.sectors.all()],
        "proposal": situation.proposal_id,
        "report_ids": report_ids,
        "participants": [
            {"organization": p.organization_id, "name": p.organization.name, "max_tlp": p.max_tlp}
            for p in situation.participants.all()
            if p.left_at is None
        ],
        "pending_decision": (
            {
                "kind": pending.kind,
                "level": pending.level.code if pending.level else None,
                "reason": pending.reason,
            }
            if pending
            else None
        ),
        "declared_by": situation.declared_by.get_username(),
        "created_at": situation.created_at,
        "activated_at": situation.activated_at,
        "ended_at": situation.ended_at,
    }


def _situations(user):
    return restrict(
        Situation.objects.select_related("level", "declared_by").prefetch_related(
            "sectors", "participants__organization", "decisions__level"
        ),
        user,
    )


def _sectors(codes: list[str]) -> list[Sector]:
    sectors = list(Sector.objects.filter(code__in=codes))
    unknown = sorted(set(codes) - {sector.code for sector in sectors})
    if unknown:
        message = _("Unknown sector: %(codes)s") % {"codes": ", ".join(unknown)}
        raise ValidationError({"sectors": [ValidationError(message, code="sectors")]})
    return sectors


def _level(code: str | None, field: str = "level") -> AlertLevel | None:
    if code is None:
        return None
    level = AlertLevel.objects.filter(code=code).first()
    if level is None:
        message = _("Unknown level %(code)s.") % {"code": code}
        raise ValidationError({field: [ValidationError(message, code="level")]})
    return level


@router.get(
    "/situations/proposals", response={200: list[ProposalOut], **READ_ERRORS}, summary="Open proposals"
)
def proposal_list(request: HttpRequest, status: ProposalStatus = ProposalStatus.OPEN):
    """Proposals the recognition rules opened (national centre only; others get an empty list): the
    rule, the level it suggests and the ids of the reports behind it."""
    proposals = restrict(
        Proposal.objects.filter(status=status)
        .select_related("rule", "level")
        .prefetch_related("report_links", "sectors"),
        request.auth,
    )
    proposals = list(proposals)
    links = ProposalReport.objects.filter(
        proposal__in=proposals, report__in=restrict(Report.objects.all(), request.auth)
    )
    visible = set(links.values_list("report_id", flat=True))
    return [proposal_out(proposal, visible) for proposal in proposals]


@router.post(
    "/situations/proposals/{int:proposal_id}/declare",
    response={201: SituationOut, **DECISION_ERRORS},
    summary="Declare a situation from a proposal",
)
def proposal_declare(request: HttpRequest, proposal_id: int, payload: DeclareIn):
    """Declare the situation a proposal calls for. It is `pending_approval` until a second, different
    coordinator approves it; the level defaults to the proposal's and the sectors to its sectors."""
    user = request.auth
    proposal = get_restricted_or_404(Proposal.objects.select_related("level"), user, pk=proposal_id)
    with service_errors(forbidden=DECISION_FORBIDDEN):
        sectors = _sectors(payload.sectors) if payload.sectors else list(proposal.sectors.all())
        data = services.Declaration(
            title=payload.title,
            reason=payload.reason,
            level=_level(payload.level) or proposal.level,
            nationwide=payload.nationwide,
            sectors=sectors,
        )
        situation = services.situation_declare(actor=user, data=data, proposal=proposal)
    return Status(201, _one(user, situation.pk))


def _decide(request: HttpRequest, situation_id: int, perform):
    user = request.auth
    situation = get_restricted_or_404(Situation.objects.all(), user, pk=situation_id)
    with service_errors(forbidden=DECISION_FORBIDDEN):
        perform(user, situation)
    return _one(user, situation.pk)


def _one(user, situation_id: int) -> dict:
    situation = get_restricted_or_404(_situations(user), user, pk=situation_id)
    return situation_out(situation, visible_report_ids([situation], user).get(situation.pk, []))


@router.post(
    "/situations/{int:situation_id}/approve",
    response={200: SituationOut, **DECISION_ERRORS},
    summary="Approve the decision awaiting approval",
)
def situation_approve(request: HttpRequest, situation_id: int):
    """Approve the declaration, raise, lower or end that awaits approval. The approver must be a
    coordinator other than the one who asked (403 otherwise)."""
    return _decide(request, situation_id, lambda user, s: services.decision_approve(actor=user, situation=s))


@router.post(
    "/situations/{int:situation_id}/end",
    response={200: SituationOut, **DECISION_ERRORS},
    summary="Ask to end a situation",
)
def situation_end(request: HttpRequest, situation_id: int, payload: ReasonIn):
    """Ask to end an active situation; it ends (`ended`) when a second coordinator approves."""
    return _decide(
        request,
        situation_id,
        lambda user, s: services.decision_request(
            actor=user, situation=s, kind=DecisionKind.END, reason=payload.reason
        ),
    )


@router.post(
    "/situations/{int:situation_id}/level",
    response={200: SituationOut, **DECISION_ERRORS},
    summary="Ask to raise or lower a situation",
)
def situation_level(request: HttpRequest, situation_id: int, payload: LevelChangeIn):
    """Ask to move an active situation to another level; it moves when a second coordinator approves."""

    def perform(user, situation):
        level = _level(payload.level)
        kind = DecisionKind.RAISE if level.rank > situation.level.rank else DecisionKind.LOWER
        services.decision_request(
            actor=user, situation=situation, kind=kind, level=level, reason=payload.reason
        )

    return _decide(request, situation_id, perform)


@router.get("/situations", response={200: list[SituationOut], 401: ProblemOut}, summary="Situations")
def situation_list(request: HttpRequest):
    """The situations you may see: all of them for the national centre, otherwise those your
    organization currently takes part in."""
    user = request.auth
    situations = list(_situations(user))
    visible = visible_report_ids(situations, user)
    return [situation_out(situation, visible.get(situation.pk, [])) for situation in situations]


@router.get(
    "/situations/{int:situation_id}", response={200: SituationOut, **READ_ERRORS}, summary="A situation"
)
def situation_detail(request: HttpRequest, situation_id: int):
    """One situation; `report_ids` lists only the reports you may see."""
    return _one(request.auth, situation_id)
