"""API shapes for information sharing: reports, advisories, the inbox, anonymized copies.

Codes are the same strings everywhere: sector and cause codes as in the reference data, TLP labels
as `CLEAR`, `GREEN`, `AMBER`, `AMBER+STRICT`, `RED`, observable types as named in STIX 2.1.
"""

import datetime as dt
from typing import Literal
from uuid import UUID

from ninja import Field, Schema

from renkei.core.schemas import PageQuery
from renkei.directory.choices import OrganizationType
from renkei.directory.schemas import OrganizationRefOut
from renkei.sharing.choices import (
    CommentKind,
    ObservableType,
    ReportKind,
    ReportStatus,
    ServiceState,
    Severity,
    Tlp,
    VersionStage,
)

MAX_NARRATIVE = 100_000
MAX_OBSERVABLES = 1_000
MAX_NAMES = 500


class ObservableIn(Schema):
    type: ObservableType = Field(description="STIX 2.1 name, e.g. `ipv4-addr` or `file:hashes.SHA-256`.")
    value: str = Field(max_length=2048, description="Validated and normalized (e.g. hashes lower-cased).")


class ObservableOut(Schema):
    type: ObservableType
    value: str


class ImpactIn(Schema):
    confidentiality: bool = Field(False, description="Information leaked.")
    integrity: bool = Field(False, description="Data destroyed or altered.")
    availability: bool = Field(False, description="Service unavailable or degraded.")
    service_state: ServiceState = ServiceState.NONE
    users_affected: int | None = Field(None, ge=0)
    duration_minutes: int | None = Field(None, ge=0)
    area: str = Field("", max_length=200, description="Geographic area affected.")


class ImpactOut(Schema):
    confidentiality: bool
    integrity: bool
    availability: bool
    service_state: ServiceState
    users_affected: int | None
    duration_minutes: int | None
    area: str


class ReportIn(Schema):
    """An initial report. Times without a time zone are Japan time."""

    organization: int | None = Field(
        None, description="Id of the reporting organization; needed only if you report for several."
    )
    title: str = Field(max_length=200)
    sector: str = Field(description="Sector code, e.g. `finance`.")
    kind: ReportKind = Field(description="`failure` (IT failure) or `sign` (sign or near miss).")
    occurred_at: dt.datetime | None = None
    detected_at: dt.datetime
    cause: str = Field("unknown", description="Cause code, e.g. `intentional.malware`; `unknown` at first.")
    tlp: Tlp = Tlp.AMBER
    narrative: str = Field(
        "", max_length=MAX_NARRATIVE, description="Stored as sent; never rendered as HTML."
    )
    status: ReportStatus = ReportStatus.OPEN
    share_with_ceptoar: bool = Field(False, description="Whether your CEPTOAR receives the report.")
    anonymized_copy_consent: bool = Field(False, description="Consent to an anonymized cross-sector copy.")
    recipients: list[str] = Field(
        [],
        max_length=MAX_NAMES,
        description="Usernames of the named recipients of a TLP:RED report "
        "(default: the duty coordinators of the reporting chain).",
    )
    observables: list[ObservableIn] = Field([], max_length=MAX_OBSERVABLES)
    impact: ImpactIn = ImpactIn()
    affected_services: str = Field("", max_length=10_000, description="Affected services and systems.")
    deadline_profile: str | None = Field(
        None, description="Deadline profile code (`nisc`, `nis2`, `circia` …); default: the sector's."
    )
    ransom_paid: bool = False


class ReportUpdateIn(Schema):
    """A new version of the report. Fields left out keep their current value; observables and
    attachments are added to the thread."""

    stage: Literal[VersionStage.UPDATE, VersionStage.FINAL] = Field(
        VersionStage.UPDATE, description="`update`, or `final` for the final report."
    )
    title: str | None = Field(None, max_length=200)
    occurred_at: dt.datetime | None = None
    detected_at: dt.datetime | None = None
    cause: str | None = None
    narrative: str | None = Field(None, max_length=MAX_NARRATIVE)
    status: ReportStatus | None = None
    observables: list[ObservableIn] = Field([], max_length=MAX_OBSERVABLES)
    impact: ImpactIn | None = None
    affected_services: str | None = Field(None, max_length=10_000)
    ransom_paid: bool | None = None


class ReportOut(Schema):
    id: UUID
    organization: OrganizationRefOut = Field(description="The reporting organization.")
    reporter: str = Field(description="Username of the reporter.")
    title: str
    sector: str
    kind: ReportKind
    status: ReportStatus
    stage: VersionStage = Field(description="The stage of the newest version.")
    tlp: Tlp
    cause: str
    narrative: str
    occurred_at: dt.datetime | None
    detected_at: dt.datetime
    share_with_ceptoar: bool
    anonymized_copy_consent: bool
    ransom_paid: bool
    deadline_profile: str | None
    version_count: int
    created_at: dt.datetime
    updated_at: dt.datetime


class AttachmentOut(Schema):
    id: UUID
    filename: str
    size: int
    sha256: str
    content_type: str = Field(description="As declared by the uploader; downloads are always octet-stream.")
    version: int = Field(description="Number of the version the file came with.")
    uploaded_by: str
    created_at: dt.datetime
    download_url: str


class VersionOut(Schema):
    number: int
    stage: VersionStage
    author: str
    created_at: dt.datetime
    title: str
    status: ReportStatus
    cause: str
    occurred_at: dt.datetime | None
    detected_at: dt.datetime
    impact: ImpactOut
    affected_services: str
    narrative: str
    observables: list[ObservableOut]
    attachments: list[AttachmentOut]


class CommentOut(Schema):
    id: int
    kind: CommentKind
    parent: int | None = Field(description="The question an answer replies to.")
    author: str
    organization: OrganizationRefOut = Field(description="The organization the author speaks for.")
    body: str
    created_at: dt.datetime


class ClassificationOut(Schema):
    cause: str
    classified_by: str
    note: str
    created_at: dt.datetime


class DeadlineOut(Schema):
    stage: str = Field(description="Stage code of the deadline profile, e.g. `initial`.")
    name: str
    due_at: dt.datetime
    fulfilled_at: dt.datetime | None
    overdue: bool
    late: bool = Field(description="Met, but after the due time.")


class ReportDetailOut(ReportOut):
    impact: ImpactOut
    affected_services: str
    observables: list[ObservableOut] = Field(description="Every observable of every version, once each.")
    recipients: list[str] = Field(description="Usernames of the named recipients (TLP:RED).")
    versions: list[VersionOut]
    attachments: list[AttachmentOut]
    comments: list[CommentOut]
    cause_history: list[ClassificationOut]
    linked: list[UUID] = Field(description="Linked reports that you may see.")
    deadlines: list[DeadlineOut] = Field(description="The deadline profile's stages for this report.")


class ReportPageOut(Schema):
    items: list[ReportOut]
    count: int = Field(description="Number of reports matching the filters, on all pages.")
    next: str | None = Field(description="URL of the next page; null on the last page.")


class ReportQuery(PageQuery):
    q: str | None = Field(
        None, max_length=200, description="Words that must all appear in the title or narrative."
    )
    sector: str | None = Field(None, description="Sector code.")
    cause: str | None = Field(None, description="Cause code; a top-level code includes its subcategories.")
    status: ReportStatus | None = None
    tlp: Tlp | None = None
    since: str | None = Field(None, description="Submitted at or after (ISO 8601 date or date-time).")
    until: str | None = Field(None, description="Submitted before (ISO 8601 date or date-time).")


class CommentIn(Schema):
    body: str = Field(max_length=20_000)
    kind: CommentKind = Field(
        CommentKind.COMMENT,
        description="`comment`; `question` (ministries and the national centre); "
        "`answer` (the reporting organization, with `parent` = the question).",
    )
    parent: int | None = None


class ForwardIn(Schema):
    organizations: list[int] = Field([], max_length=MAX_NAMES, description="Organization ids.")
    people: list[str] = Field([], max_length=MAX_NAMES, description="Usernames.")


class ForwardOut(Schema):
    organizations: list[OrganizationRefOut] = Field(description="Organizations newly added to the audience.")
    people: list[str] = Field(description="People newly added to the audience.")


class LinkIn(Schema):
    report: UUID = Field(description="Id of the report to link to. You must be able to triage both.")


class LinksOut(Schema):
    report: UUID
    linked: list[UUID] = Field(description="The reports linked to it that you may see, after the change.")


class ClassificationIn(Schema):
    cause: str = Field(description="Cause code, e.g. `intentional.intrusion`.")
    note: str = Field("", max_length=2_000, description="Why; kept in the cause history.")


class LabelIn(Schema):
    tlp: Tlp
    source_consent: bool = Field(
        False,
        description="The reporting organization agreed to this label. Needed when the national centre "
        "relabels another organization's report.",
    )


class LabelOut(Schema):
    report: UUID
    tlp: Tlp
    visible: bool = Field(
        description="Whether you may still see the report: TLP:RED reaches named people only."
    )


class AudienceIn(Schema):
    all_ci: bool = Field(False, description="Every organization of critical infrastructure.")
    sectors: list[str] = Field([], max_length=MAX_NAMES, description="Sector codes.")
    organization_types: list[OrganizationType] = Field([], max_length=MAX_NAMES)
    organizations: list[int] = Field([], max_length=MAX_NAMES, description="Organization ids.")
    people: list[str] = Field([], max_length=MAX_NAMES, description="Usernames.")


class AudienceOut(Schema):
    all_ci: bool
    sectors: list[str]
    organization_types: list[OrganizationType]
    organizations: list[OrganizationRefOut]
    people: list[str]


class AdvisoryIn(Schema):
    organization: int | None = Field(
        None, description="Id of the issuing organization; needed only if you issue for several."
    )
    title: str = Field(max_length=200)
    body: str = Field(max_length=MAX_NARRATIVE)
    severity: Severity = Severity.MEDIUM
    tlp: Tlp = Tlp.AMBER
    audience: AudienceIn
    ack_required: bool = False
    ack_due: dt.datetime | None = None
    source_reports: list[UUID] = Field(
        [], max_length=MAX_NAMES, description="Ids of the reports it stems from."
    )
    observables: list[ObservableIn] = Field([], max_length=MAX_OBSERVABLES)


class AdvisoryAttachmentOut(Schema):
    id: UUID
    filename: str
    size: int
    sha256: str
    content_type: str = Field(description="As declared by the uploader; downloads are always octet-stream.")
    uploaded_by: str
    created_at: dt.datetime
    download_url: str


class AdvisorySummaryOut(Schema):
    id: UUID
    issuer: OrganizationRefOut
    title: str
    severity: Severity
    tlp: Tlp
    ack_required: bool
    ack_due: dt.datetime | None
    created_at: dt.datetime


class AdvisoryOut(AdvisorySummaryOut):
    issued_by: str
    body: str
    audience: AudienceOut | None = Field(description="Shown to the issuer's chain only; null for recipients.")
    source_reports: list[UUID] = Field(description="The reports it stems from that you may see.")
    observables: list[ObservableOut]
    attachments: list[AdvisoryAttachmentOut]


class AdvisoryPageOut(Schema):
    items: list[AdvisoryOut]
    count: int
    next: str | None


class AdvisoryQuery(PageQuery):
    severity: Severity | None = None
    tlp: Tlp | None = None


class InboxItemOut(Schema):
    advisory: AdvisorySummaryOut
    organization: OrganizationRefOut = Field(description="The organization you received it for.")
    delivered_at: dt.datetime
    read_at: dt.datetime | None
    acknowledged: bool = Field(description="Whether that organization has acknowledged it.")


class InboxPageOut(Schema):
    items: list[InboxItemOut]
    count: int
    next: str | None


class AcknowledgeIn(Schema):
    organization: int | None = Field(
        None, description="The organization you acknowledge for; default: your first one in the audience."
    )


class AcknowledgementOut(Schema):
    advisory: UUID
    organization: OrganizationRefOut
    acknowledged_by: str
    acknowledged_at: dt.datetime


class AcknowledgementRowOut(Schema):
    organization: OrganizationRefOut
    acknowledged_by: str | None
    acknowledged_at: dt.datetime | None


class ReminderOut(Schema):
    sent_at: dt.datetime
    organizations: list[int] = Field(description="Ids of the organizations reminded.")
    recipients: int = Field(description="Number of people reminded.")


class AcknowledgementTableOut(Schema):
    advisory: UUID
    ack_required: bool
    ack_due: dt.datetime | None
    acknowledged: int
    pending: int
    organizations: list[AcknowledgementRowOut] = Field(
        description="Every organization the advisory's audience reaches or that acknowledged it; "
        "those that have not acknowledged first."
    )
    reminders: list[ReminderOut] = Field(description="Acknowledgement reminders sent, oldest first.")


class AnonymizedReportOut(Schema):
    id: UUID
    organization: None = Field(None, description="Always null: an anonymized copy hides its source.")
    source: UUID | None = Field(description="The original report, only if you may see it; else null.")
    title: str
    narrative: str
    sector: str | None = Field(description="Null when the sector was generalized away.")
    kind: ReportKind
    cause: str
    occurred_month: dt.date | None = Field(description="First day of the month of occurrence.")
    tlp: Tlp
    published_on: dt.date
    observables: list[ObservableOut]


class AnonymizedAudienceIn(Schema):
    all_ci: bool = Field(False, description="Every organization of critical infrastructure.")
    sectors: list[str] = Field([], max_length=MAX_NAMES, description="Sector codes.")
    organizations: list[int] = Field([], max_length=MAX_NAMES, description="Organization ids.")
    people: list[str] = Field([], max_length=MAX_NAMES, description="Usernames.")


class AnonymizedReportIn(Schema):
    """A sanitized copy of a report, as its creator redacted it. Kind, cause and the month of
    occurrence come from the original; the organization and the reporter never do."""

    title: str = Field(max_length=200, description="Must not name the reporting organization or reporter.")
    narrative: str = Field(max_length=MAX_NARRATIVE, description="The redacted narrative.")
    keep_sector: bool = Field(
        True, description="Keep the original's sector; false generalizes it away (`sector` is then null)."
    )
    observables: list[ObservableIn] = Field(
        [], max_length=MAX_OBSERVABLES, description="Observables of the original report to keep."
    )
    tlp: Tlp = Tlp.GREEN
    audience: AnonymizedAudienceIn = Field(
        AnonymizedAudienceIn(all_ci=True), description="Who receives the copy; default: all CI."
    )


class AnonymizedReportPageOut(Schema):
    items: list[AnonymizedReportOut]
    count: int
    next: str | None


class AnonymizedReportQuery(PageQuery):
    q: str | None = Field(None, max_length=200)
    sector: str | None = None
    cause: str | None = None
