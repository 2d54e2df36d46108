from datetime import datetime
from uuid import UUID

from ninja import Field, Schema


class ProposalOut(Schema):
    id: int
    rule: str = Field(description="The recognition rule's code.")
    rule_name: str
    level: str = Field(description="The code of the level the rule proposes.")
    status: str = Field(description="open, declared or dismissed.")
    report_ids: list[UUID]
    sectors: list[str]
    created_at: datetime
    updated_at: datetime


class DeclareIn(Schema):
    title: str = Field(max_length=200)
    reason: str = Field(min_length=1)
    level: str | None = Field(None, description="A level code; by default the level the proposal suggests.")
    nationwide: bool = False
    sectors: list[str] = Field(
        default_factory=list, description="Sector codes; by default the sectors of the proposal's reports."
    )


class ReasonIn(Schema):
    reason: str = Field(min_length=1)


class LevelChangeIn(Schema):
    level: str = Field(description="The level code to raise or lower to.")
    reason: str = Field(min_length=1)


class ParticipantOut(Schema):
    organization: int
    name: str
    max_tlp: str = Field(description="Reports of the situation up to this label are shared with it.")


class PendingDecisionOut(Schema):
    kind: str = Field(description="declare, raise, lower or end.")
    level: str | None
    reason: str


class SituationOut(Schema):
    id: int
    title: str
    level: str
    status: str = Field(description="pending_approval, active or ended.")
    nationwide: bool
    sectors: list[str]
    proposal: int | None
    report_ids: list[UUID] = Field(description="The situation's reports you may see.")
    participants: list[ParticipantOut]
    pending_decision: PendingDecisionOut | None
    declared_by: str
    created_at: datetime
    activated_at: datetime | None
    ended_at: datetime | None
