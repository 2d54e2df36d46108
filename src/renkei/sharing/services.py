"""Writes for information sharing: submitting and updating reports, and who receives them.

Every service is atomic and audited in the same transaction; notifications are queued on commit.
"""

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from renkei.audit.models import AuditAction
from renkei.audit.services import audit_write, snapshot
from renkei.directory.choices import OrganizationType, Role
from renkei.directory.models import Organization, Sector, User
from renkei.sharing.choices import GrantReason, ReportKind, ReportStatus, ServiceState, Tlp, VersionStage
from renkei.sharing.models import (
    REPORTING_ROLES,
    Attachment,
    Blob,
    CauseCategory,
    CauseClassification,
    DeadlineProfile,
    DeadlineStage,
    Observable,
    Report,
    ReportGrant,
    ReportVersion,
)
from renkei.sharing.observables import normalize_observable

REFERENCE_DATA = Path(__file__).parent / "referencedata" / "sharing.json"
# Clocks differ between an operator's systems and ours; a few minutes ahead is not "in the future".
CLOCK_SKEW = dt.timedelta(minutes=5)


@transaction.atomic
def sharing_reference_data_load(*, actor=None, path: Path = REFERENCE_DATA) -> dict[str, int]:
    """Create the cause taxonomy and deadline profiles that are missing; never overwrite edits."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    created = {"causes": 0, "deadline_profiles": 0}
    for item in data["causes"]:
        if CauseCategory.objects.filter(code=item["code"]).exists():
            continue
        cause = CauseCategory.objects.create(
            code=item["code"],
            parent=CauseCategory.objects.get(code=item["parent"]) if item["parent"] else None,
            name_ja=item["name_ja"],
            name_en=item["name_en"],
            display_order=item["display_order"],
        )
        audit_write(actor=actor, action=AuditAction.CREATE, obj=cause, after=snapshot(cause))
        created["causes"] += 1
    for item in data["deadline_profiles"]:
        if DeadlineProfile.objects.filter(code=item["code"]).exists():
            continue
        profile = DeadlineProfile.objects.create(
            code=item["code"],
            name_ja=item["name_ja"],
            name_en=item["name_en"],
            description=item["description"],
        )
        for order, stage in enumerate(item["stages"], start=1):
            DeadlineStage.objects.create(profile=profile, order=order, **stage)
        profile.sectors.set(Sector.objects.filter(code__in=item["sectors"]))
        audit_write(actor=actor, action=AuditAction.CREATE, obj=profile, after=snapshot(profile))
        created["deadline_profiles"] += 1
    return created


@dataclass(frozen=True)
class ObservableInput:
    type: str
    value: str


@dataclass(frozen=True)
class AttachmentInput:
    filename: str
    content_type: str
    content: bytes


@dataclass
class ReportInput:
    """What a reporter fills in. The same shape serves the initial report and every update."""

    title: str
    sector: Sector
    kind: str
    detected_at: dt.datetime
    cause: CauseCategory
    occurred_at: dt.datetime | None = None
    tlp: str = Tlp.AMBER
    narrative: str = ""
    status: str = ReportStatus.OPEN
    share_with_ceptoar: bool = False
    anonymized_copy_consent: bool = False
    recipients: Sequence[User] = ()
    observables: Sequence[ObservableInput] = ()
    attachments: Sequence[AttachmentInput] = ()
    impact_confidentiality: bool = False
    impact_integrity: bool = False
    impact_availability: bool = False
    service_state: str = ServiceState.NONE
    users_affected: int | None = None
    duration_minutes: int | None = None
    area: str = ""
    affected_services: str = ""
    deadline_profile: DeadlineProfile | None = None
    ransom_paid: bool = False
    extra: dict = field(default_factory=dict)


def _check(condition: bool, message: str, code: str, field_name: str | None = None) -> None:
    if not condition:
        raise ValidationError(
            {field_name: [ValidationError(message, code=code)]} if field_name else message, code=code
        )


def _validate_report(data: ReportInput) -> list[ObservableInput]:
    _check(bool(data.title and data.title.strip()), _("A title is required."), "title", "title")
    _check(len(data.title) <= 200, _("The title is longer than 200 characters."), "title", "title")
    _check(data.kind in ReportKind.values, _("Kind must be failure or sign."), "kind", "kind")
    _check(data.tlp in Tlp.values, _("Unknown TLP label %(tlp)s.") % {"tlp": data.tlp}, "tlp", "tlp")
    _check(data.status in ReportStatus.values, _("Unknown status."), "status", "status")
    _check(
        data.service_state in ServiceState.values,
        _("Unknown service state."),
        "service_state",
        "service_state",
    )
    _check(data.cause.active, _("That cause category is retired."), "cause", "cause")
    now = timezone.now()
    _check(
        data.detected_at <= now + CLOCK_SKEW,
        _("The detection time is in the future."),
        "detected_at",
        "detected_at",
    )
    if data.occurred_at is not None:
        _check(
            data.occurred_at <= data.detected_at,
            _("The incident cannot occur after it was detected."),
            "occurred_at",
            "occurred_at",
        )
    max_bytes = settings.RENKEI_ATTACHMENT_MAX_BYTES
    for attachment in data.attachments:
        _check(
            len(attachment.content) <= max_bytes,
            _("%(name)s is larger than the limit of %(limit)d MB.")
            % {"name": attachment.filename, "limit": max_bytes // (1024 * 1024)},
            "attachment_size",
            "attachments",
        )
        _check(
            bool(attachment.filename.strip()),
            _("An attachment needs a file name."),
            "attachment_name",
            "attachments",
        )
    normalized = []
    for observable in data.observables:
        try:
            normalized.append(
                ObservableInput(observable.type, normalize_observable(observable.type, observable.value))
            )
        except ValidationError as error:
            raise ValidationError({"observables": error.messages}, code="observable") from None
    return list(dict.fromkeys(normalized))


def mandated_chain(organization: Organization, sector: Sector) -> list[Organization]:
    """The sector's ministries and the national centre: every report's mandatory recipients."""
    ministries = list(sector.ministries.filter(active=True))
    centres = list(Organization.objects.filter(type=OrganizationType.NATIONAL_CENTER, active=True))
    return ministries + centres


def duty_coordinators(organizations: Sequence[Organization]) -> list[User]:
    """The default named recipients of a TLP:RED report: the chain's coordinators."""
    return list(
        User.objects.filter(
            is_active=True,
            memberships__organization__in=organizations,
            memberships__role=Role.COORDINATOR,
        ).distinct()
    )


def _store_attachment(*, version: ReportVersion, uploader: User, attachment: AttachmentInput) -> Attachment:
    digest = hashlib.sha256(attachment.content).hexdigest()
    blob, created = Blob.objects.get_or_create(sha256=digest, defaults={"size": len(attachment.content)})
    path = blob_path(digest)
    if created or not default_storage.exists(path):
        default_storage.save(path, ContentFile(attachment.content))
    return Attachment.objects.create(
        version=version,
        blob=blob,
        filename=Path(attachment.filename).name[:255],
        content_type=(attachment.content_type or "application/octet-stream")[:100],
        uploaded_by=uploader,
    )


def blob_path(sha256: str) -> str:
    return f"blobs/{sha256[:2]}/{sha256}"


def _add_version(
    *,
    report: Report,
    author: User,
    data: ReportInput,
    stage: str,
    number: int,
    observables: list[ObservableInput],
) -> ReportVersion:
    version = ReportVersion.objects.create(
        report=report,
        number=number,
        stage=stage,
        author=author,
        title=data.title.strip(),
        status=data.status,
        cause=data.cause,
        occurred_at=data.occurred_at,
        detected_at=data.detected_at,
        impact_confidentiality=data.impact_confidentiality,
        impact_integrity=data.impact_integrity,
        impact_availability=data.impact_availability,
        service_state=data.service_state,
        users_affected=data.users_affected,
        duration_minutes=data.duration_minutes,
        area=data.area,
        affected_services=data.affected_services,
        narrative=data.narrative,
    )
    Observable.objects.bulk_create(
        Observable(version=version, type=o.type, value=o.value) for o in observables
    )
    for attachment in data.attachments:
        _store_attachment(version=version, uploader=author, attachment=attachment)
    return version


def _grant(report: Report, reason: str, *, by: User, organization=None, user=None) -> None:
    ReportGrant.objects.get_or_create(
        report=report,
        organization=organization,
        user=user,
        defaults={"reason": reason, "granted_by": by},
    )


@transaction.atomic
def report_submit(*, reporter: User, organization: Organization, data: ReportInput) -> Report:
    """File an initial report and route it: the reporter's organization, the sector's ministries and
    the national centre, the CEPTOAR if chosen, and for TLP:RED the named people."""
    _check(
        organization.active
        and reporter.memberships.filter(organization=organization, role__in=REPORTING_ROLES).exists(),
        _("You cannot report on behalf of this organization."),
        "not_reporter",
    )
    _check(
        organization.sectors.filter(pk=data.sector.pk).exists(),
        _("%(organization)s is not in the sector %(sector)s.")
        % {"organization": organization, "sector": data.sector},
        "sector",
        "sector",
    )
    observables = _validate_report(data)
    ceptoar = (
        organization.parent
        if organization.parent and organization.parent.type == OrganizationType.CEPTOAR
        else None
    )
    _check(
        not data.share_with_ceptoar or ceptoar is not None,
        _("Your organization has no CEPTOAR to share with."),
        "no_ceptoar",
        "share_with_ceptoar",
    )
    chain = mandated_chain(organization, data.sector)
    recipients = list(data.recipients)
    if data.tlp == Tlp.RED and not recipients:
        recipients = duty_coordinators(chain + ([ceptoar] if data.share_with_ceptoar else []))
    _check(
        data.tlp == Tlp.RED or not recipients,
        _("Named recipients are only for TLP:RED reports."),
        "recipients",
        "recipients",
    )
    profile = data.deadline_profile or data.sector.default_deadline_profiles.order_by("code").first()

    report = Report.objects.create(
        organization=organization,
        reporter=reporter,
        sector=data.sector,
        kind=data.kind,
        status=data.status,
        tlp=data.tlp,
        share_with_ceptoar=data.share_with_ceptoar,
        anonymized_copy_consent=data.anonymized_copy_consent,
        deadline_profile=profile,
        ransom_paid=data.ransom_paid,
        title=data.title.strip(),
        cause=data.cause,
        narrative=data.narrative,
        occurred_at=data.occurred_at,
        detected_at=data.detected_at,
        stage=VersionStage.INITIAL,
        version_count=1,
    )
    _add_version(
        report=report,
        author=reporter,
        data=data,
        stage=VersionStage.INITIAL,
        number=1,
        observables=observables,
    )
    CauseClassification.objects.create(report=report, cause=data.cause, classified_by=reporter)
    _grant(report, GrantReason.SOURCE, by=reporter, organization=organization)
    for recipient in chain:
        _grant(report, GrantReason.MANDATED, by=reporter, organization=recipient)
    if data.share_with_ceptoar:
        _grant(report, GrantReason.CEPTOAR, by=reporter, organization=ceptoar)
    for person in recipients:
        _grant(report, GrantReason.NAMED, by=reporter, user=person)
    audit_write(actor=reporter, action=AuditAction.CREATE, obj=report, after=snapshot(report))
    return report


@transaction.atomic
def report_update(
    *, author: User, report: Report, data: ReportInput, stage: str = VersionStage.UPDATE
) -> ReportVersion:
    """Add an immutable version to the thread; the report's current state follows it."""
    report = Report.objects.select_for_update().get(pk=report.pk)
    _check(
        report.organization.memberships.filter(user=author, role__in=REPORTING_ROLES).exists(),
        _("Only the reporting organization can add versions."),
        "not_reporter",
    )
    _check(report.status != ReportStatus.CLOSED, _("This report is closed."), "closed")
    _check(stage in (VersionStage.UPDATE, VersionStage.FINAL), _("Unknown stage."), "stage", "stage")
    _check(
        data.sector == report.sector,
        _("A report's sector cannot change; file a new report."),
        "sector",
        "sector",
    )
    _check(
        data.tlp == report.tlp, _("Change the label with the relabel action, not in an update."), "tlp", "tlp"
    )
    observables = _validate_report(data)
    before = snapshot(report)
    number = report.version_count + 1
    version = _add_version(
        report=report, author=author, data=data, stage=stage, number=number, observables=observables
    )
    if data.cause != report.cause:
        CauseClassification.objects.create(report=report, cause=data.cause, classified_by=author)
    report.title = version.title
    report.status = (
        ReportStatus.RESOLVED
        if stage == VersionStage.FINAL and data.status == ReportStatus.OPEN
        else data.status
    )
    report.cause = data.cause
    report.narrative = data.narrative
    report.occurred_at = data.occurred_at
    report.detected_at = data.detected_at
    report.ransom_paid = data.ransom_paid or report.ransom_paid
    report.stage = stage
    report.version_count = number
    report.save()
    audit_write(actor=author, action=AuditAction.UPDATE, obj=report, before=before, after=snapshot(report))
    return version
