"""Information sharing (seed §3): reports up the chain, advisories down, anonymized cross-sector copies.

Visibility is decided by `access_rule` on each shared model (see core/access.py). The rule of the
whole app: an object is visible to its explicit audience, and its TLP 2.0 label is the ceiling on
who may ever be added to that audience. TLP:RED objects are visible to named people only.
"""

import functools
import operator
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from renkei.core.access import NOTHING, Principal, RestrictedQuerySet
from renkei.core.choices import Action
from renkei.directory.choices import COMMUNITY_TYPES, OrganizationType, Role
from renkei.directory.models import localized
from renkei.sharing.choices import (
    CommentKind,
    GrantReason,
    NotificationKind,
    ObservableType,
    ReportKind,
    ReportStatus,
    ServiceState,
    Severity,
    StageAnchor,
    Tlp,
    VersionStage,
)

# Government duty staff who triage reports from the sectors they receive.
TRIAGE_TYPES = (OrganizationType.NATIONAL_CENTER, OrganizationType.SECTOR_MINISTRY)
TRIAGE_ROLES = (Role.COORDINATOR, Role.ANALYST, Role.OFFICER)
FORWARD_ROLES = (Role.OFFICER, Role.COORDINATOR)
REPORTING_ROLES = (Role.REPORTER, Role.OFFICER, Role.ORG_ADMIN)


class CauseCategory(models.Model):
    """An entry of the editable cause taxonomy (intentional / accidental / environmental / spill-over)."""

    code = models.CharField(_("code"), max_length=64, unique=True)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent"),
        related_name="children",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
    )
    name_ja = models.CharField(_("name (Japanese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=150, blank=True)
    active = models.BooleanField(_("active"), default=True)
    display_order = models.PositiveSmallIntegerField(_("display order"), default=0)

    class Meta:
        ordering = ["display_order", "code"]
        verbose_name = _("cause category")
        verbose_name_plural = _("cause categories")

    def __str__(self) -> str:
        return localized(self.name_ja, self.name_en)

    @property
    def top_level_code(self) -> str:
        return self.code.split(".", 1)[0]


class DeadlineProfile(models.Model):
    """A reporting regime: its stages and their deadlines (NISC, EU NIS2, US CIRCIA …)."""

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name_ja = models.CharField(_("name (Japanese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=150, blank=True)
    description = models.TextField(_("description"), blank=True)
    sectors = models.ManyToManyField(
        "directory.Sector",
        verbose_name=_("default for sectors"),
        related_name="default_deadline_profiles",
        blank=True,
        help_text=_("Sectors whose reports follow this profile unless the reporter picks another."),
    )

    class Meta:
        ordering = ["code"]
        verbose_name = _("deadline profile")
        verbose_name_plural = _("deadline profiles")

    def __str__(self) -> str:
        return localized(self.name_ja, self.name_en)


class DeadlineStage(models.Model):
    """One report a regime expects, due some hours after detection or after the previous stage."""

    profile = models.ForeignKey(
        DeadlineProfile, verbose_name=_("profile"), related_name="stages", on_delete=models.CASCADE
    )
    order = models.PositiveSmallIntegerField(_("order"))
    code = models.SlugField(_("code"), max_length=32)
    name_ja = models.CharField(_("name (Japanese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=150, blank=True)
    hours = models.PositiveIntegerField(_("hours"))
    anchor = models.CharField(
        _("counted"), max_length=16, choices=StageAnchor.choices, default=StageAnchor.DETECTION
    )
    version_stage = models.CharField(
        _("fulfilled by"),
        max_length=16,
        choices=VersionStage.choices,
        help_text=_("The kind of report version that meets this deadline."),
    )
    condition = models.CharField(
        _("only when"),
        max_length=32,
        blank=True,
        help_text=_("A report flag that makes this stage apply, e.g. ransom_paid; empty for always."),
    )

    class Meta:
        ordering = ["profile", "order"]
        verbose_name = _("deadline stage")
        verbose_name_plural = _("deadline stages")
        constraints = [
            models.UniqueConstraint(fields=["profile", "order"], name="deadline_stage_unique_order"),
            models.UniqueConstraint(fields=["profile", "code"], name="deadline_stage_unique_code"),
        ]

    def __str__(self) -> str:
        return localized(self.name_ja, self.name_en)


class Report(models.Model):
    """An incident report (情報連絡) from an operator: a thread of immutable versions.

    The fields that lists, filters and search need (title, cause, narrative …) are copied here from
    the newest version, so that reading the current state never walks the thread.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "directory.Organization",
        verbose_name=_("reporting organization"),
        related_name="reports",
        on_delete=models.PROTECT,
    )
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("reporter"), related_name="reports", on_delete=models.PROTECT
    )
    sector = models.ForeignKey(
        "directory.Sector", verbose_name=_("sector"), related_name="reports", on_delete=models.PROTECT
    )
    kind = models.CharField(_("kind"), max_length=16, choices=ReportKind.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=ReportStatus.choices, default=ReportStatus.OPEN
    )
    tlp = models.CharField(_("TLP"), max_length=16, choices=Tlp.choices, default=Tlp.AMBER)
    share_with_ceptoar = models.BooleanField(_("share with the CEPTOAR"), default=False)
    anonymized_copy_consent = models.BooleanField(
        _("consents to an anonymized cross-sector copy"), default=False
    )
    deadline_profile = models.ForeignKey(
        DeadlineProfile,
        verbose_name=_("deadline profile"),
        related_name="reports",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
    )
    ransom_paid = models.BooleanField(_("ransom paid"), default=False)
    # Current state, copied from the newest version.
    title = models.CharField(_("title"), max_length=200)
    cause = models.ForeignKey(
        CauseCategory, verbose_name=_("cause"), related_name="reports", on_delete=models.PROTECT
    )
    narrative = models.TextField(_("narrative"), blank=True)
    occurred_at = models.DateTimeField(_("occurred at"), null=True, blank=True)
    detected_at = models.DateTimeField(_("detected at"))
    stage = models.CharField(
        _("stage"), max_length=16, choices=VersionStage.choices, default=VersionStage.INITIAL
    )
    version_count = models.PositiveIntegerField(_("versions"), default=1)
    created_at = models.DateTimeField(_("submitted at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    linked = models.ManyToManyField("self", verbose_name=_("linked reports"), blank=True, symmetrical=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("report")
        verbose_name_plural = _("reports")
        indexes = [
            models.Index(fields=["sector", "-created_at"], name="report_sector_recent_idx"),
            models.Index(fields=["status", "-created_at"], name="report_status_recent_idx"),
            # Recognition rules count a cause's reports and sectors in a time window (situations).
            models.Index(fields=["cause", "created_at"], include=["sector"], name="report_cause_recent_idx"),
        ]

    def __str__(self) -> str:
        return self.title

    @classmethod
    def access_rule(cls, principal: Principal, action: str) -> Q:
        if not principal.is_authenticated:
            return NOTHING
        # One subquery, so the database plans visibility as a single semi-join (an OR of two
        # subqueries would force it to materialize every visible id for every page).
        # TLP:RED reaches named people, the reporter and the source's officers, never whole
        # organizations; the organization's SOURCE grant stands for the reporting organization.
        # Every condition is on the grant row itself, so the database can answer it from the
        # grant indexes (the reporter holds a SOURCE grant of their own).
        audience_conditions = [
            Q(organization_id__in=principal.org_ids, report_is_red=False),
            Q(user_id=principal.user_id),
        ]
        if officer_orgs := principal.org_ids_with_role(Role.OFFICER):
            audience_conditions.append(Q(reason=GrantReason.SOURCE, organization_id__in=officer_orgs))
        if principal.org_types.isdisjoint(TRIAGE_TYPES):
            # Outside the chain an audience is small: a UNION ALL of index-only scans reads it
            # without visiting the grant rows. (Ministries and the centre receive a large share of
            # everything; for them the page walks the newest reports and probes each one instead.)
            first, *rest = (
                ReportGrant.objects.filter(q).order_by().values("report_id") for q in audience_conditions
            )
            audience = first.union(*rest, all=True)
        else:
            audience = ReportGrant.objects.filter(functools.reduce(operator.or_, audience_conditions))
            audience = audience.values("report_id")
        visible = Q(pk__in=audience)
        if action in (Action.VIEW, Action.COMMENT):
            return visible
        if action == Action.CHANGE:
            return Q(organization_id__in=principal.org_ids_with_role(*REPORTING_ROLES)) & visible
        if action == Action.TRIAGE:
            # Ministries and the national centre triage what reached them.
            # On TLP:RED, only triage staff who were named themselves.
            triage_orgs = principal.org_ids_with_role(*TRIAGE_ROLES, org_types=TRIAGE_TYPES)
            if not triage_orgs:
                return NOTHING
            # A situation's participants read its reports; they do not triage or pass them on.
            received = (
                ReportGrant.objects.filter(organization_id__in=triage_orgs)
                .exclude(reason=GrantReason.SITUATION)
                .values("report_id")
            )
            named = ReportGrant.objects.filter(user_id=principal.user_id, reason=GrantReason.NAMED)
            return visible & Q(pk__in=received) & (~Q(tlp=Tlp.RED) | Q(pk__in=named.values("report_id")))
        if action == Action.FORWARD:
            forwarders = (
                ReportGrant.objects.filter(organization_id__in=principal.org_ids_with_role(*FORWARD_ROLES))
                .exclude(reason=GrantReason.SITUATION)
                .values("report_id")
            )
            return visible & Q(pk__in=forwarders)
        return NOTHING


class ReportGrant(models.Model):
    """One entry of a report's audience: an organization, or (for TLP:RED) a named person."""

    # The three keys are indexed by Meta.indexes, which also carry what visibility checks read.
    report = models.ForeignKey(
        Report, verbose_name=_("report"), related_name="grants", on_delete=models.CASCADE, db_index=False
    )
    organization = models.ForeignKey(
        "directory.Organization",
        verbose_name=_("organization"),
        related_name="report_grants",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_index=False,
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("person"),
        related_name="report_grants",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_index=False,
    )
    reason = models.CharField(_("reason"), max_length=16, choices=GrantReason.choices)
    # A copy of `report.tlp == RED`, so that visibility is decided on grant rows alone (see
    # Report.access_rule); set on save and by report_relabel.
    report_is_red = models.BooleanField(_("report is TLP:RED"), default=False, editable=False)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("granted by"),
        related_name="+",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
    )
    created_at = models.DateTimeField(_("granted at"), auto_now_add=True)

    class Meta:
        ordering = ["report", "created_at", "pk"]
        verbose_name = _("report audience entry")
        verbose_name_plural = _("report audience entries")
        constraints = [
            models.CheckConstraint(
                condition=(Q(organization__isnull=False) & Q(user__isnull=True))
                | (Q(organization__isnull=True) & Q(user__isnull=False)),
                name="report_grant_organization_xor_user",
            ),
            models.UniqueConstraint(
                fields=["report", "organization"],
                condition=Q(organization__isnull=False),
                name="report_grant_unique_organization",
            ),
            models.UniqueConstraint(
                fields=["report", "user"], condition=Q(user__isnull=False), name="report_grant_unique_user"
            ),
        ]
        # Covering on PostgreSQL, so that `Report.access_rule` is answered from the indexes alone:
        # by organization for a reader's first page, by report for the check of each newest report.
        indexes = [
            models.Index(
                fields=["organization", "report"],
                include=["report_is_red", "reason"],
                name="report_grant_org_idx",
            ),
            models.Index(fields=["user", "report"], name="report_grant_user_idx"),
            models.Index(
                fields=["report"],
                include=["organization", "user", "report_is_red", "reason"],
                name="report_grant_report_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.report_id} → {self.organization or self.user} ({self.reason})"

    def save(self, *args, **kwargs):
        self.report_is_red = self.report.tlp == Tlp.RED
        super().save(*args, **kwargs)


class ReportVersion(models.Model):
    """One immutable step of a report's thread: the initial report, an update, or the final report."""

    report = models.ForeignKey(
        Report, verbose_name=_("report"), related_name="versions", on_delete=models.CASCADE
    )
    number = models.PositiveIntegerField(_("number"))
    stage = models.CharField(_("stage"), max_length=16, choices=VersionStage.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("author"), related_name="+", on_delete=models.PROTECT
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    title = models.CharField(_("title"), max_length=200)
    status = models.CharField(_("status"), max_length=16, choices=ReportStatus.choices)
    cause = models.ForeignKey(
        CauseCategory, verbose_name=_("cause"), related_name="+", on_delete=models.PROTECT
    )
    occurred_at = models.DateTimeField(_("occurred at"), null=True, blank=True)
    detected_at = models.DateTimeField(_("detected at"))
    impact_confidentiality = models.BooleanField(_("confidentiality affected (leak)"), default=False)
    impact_integrity = models.BooleanField(_("integrity affected (destruction, alteration)"), default=False)
    impact_availability = models.BooleanField(_("availability affected"), default=False)
    service_state = models.CharField(
        _("service state"), max_length=16, choices=ServiceState.choices, default=ServiceState.NONE
    )
    users_affected = models.PositiveIntegerField(_("users affected"), null=True, blank=True)
    duration_minutes = models.PositiveIntegerField(_("duration (minutes)"), null=True, blank=True)
    area = models.CharField(_("area affected"), max_length=200, blank=True)
    affected_services = models.TextField(_("affected services and systems"), blank=True)
    narrative = models.TextField(_("narrative"), blank=True)

    class Meta:
        ordering = ["report", "number"]
        verbose_name = _("report version")
        verbose_name_plural = _("report versions")
        constraints = [
            models.UniqueConstraint(fields=["report", "number"], name="report_version_unique_number"),
        ]

    def __str__(self) -> str:
        return f"{self.report_id} v{self.number}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("report versions are immutable; add a new version instead")
        super().save(*args, **kwargs)


class Observable(models.Model):
    """An indicator in a report version, typed with STIX 2.1 names and validated on the way in."""

    version = models.ForeignKey(
        ReportVersion, verbose_name=_("version"), related_name="observables", on_delete=models.CASCADE
    )
    type = models.CharField(_("type"), max_length=32, choices=ObservableType.choices)
    value = models.CharField(_("value"), max_length=2048)

    class Meta:
        ordering = ["version", "pk"]
        verbose_name = _("observable")
        verbose_name_plural = _("observables")
        indexes = [models.Index(fields=["type", "value"], name="observable_value_idx")]

    def __str__(self) -> str:
        return f"{self.type}: {self.value}"


class Blob(models.Model):
    """Attachment content, stored once by its SHA-256 (content-addressed)."""

    sha256 = models.CharField(_("SHA-256"), max_length=64, primary_key=True)
    size = models.PositiveBigIntegerField(_("size"))
    created_at = models.DateTimeField(_("stored at"), auto_now_add=True)

    class Meta:
        verbose_name = _("stored file")
        verbose_name_plural = _("stored files")

    def __str__(self) -> str:
        return self.sha256


class StoredFile(models.Model):
    """What every attachment has besides its owner and its content (a Blob, whose reverse name
    differs per owner)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    filename = models.CharField(_("file name"), max_length=255)
    content_type = models.CharField(_("content type"), max_length=100)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("uploaded by"), related_name="+", on_delete=models.PROTECT
    )
    created_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.filename


class Attachment(StoredFile):
    """A file attached to a report version; served only as a download to those who may see it."""

    version = models.ForeignKey(
        ReportVersion, verbose_name=_("version"), related_name="attachments", on_delete=models.CASCADE
    )
    blob = models.ForeignKey(
        Blob, verbose_name=_("content"), related_name="attachments", on_delete=models.PROTECT
    )

    class Meta:
        ordering = ["version", "created_at"]
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")


class ReportComment(models.Model):
    """A comment, a question to the reporter, or the reporter's answer (threaded by `parent`)."""

    report = models.ForeignKey(
        Report, verbose_name=_("report"), related_name="comments", on_delete=models.CASCADE
    )
    parent = models.ForeignKey(
        "self",
        verbose_name=_("in reply to"),
        related_name="replies",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
    )
    kind = models.CharField(
        _("kind"), max_length=16, choices=CommentKind.choices, default=CommentKind.COMMENT
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("author"), related_name="+", on_delete=models.PROTECT
    )
    author_organization = models.ForeignKey(
        "directory.Organization",
        verbose_name=_("author's organization"),
        related_name="+",
        on_delete=models.PROTECT,
    )
    body = models.TextField(_("text"))
    created_at = models.DateTimeField(_("written at"), auto_now_add=True)

    class Meta:
        ordering = ["report", "created_at", "pk"]
        verbose_name = _("comment")
        verbose_name_plural = _("comments")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class CauseClassification(models.Model):
    """The history of a report's cause: each (re)classification, by whom and why."""

    report = models.ForeignKey(
        Report, verbose_name=_("report"), related_name="classifications", on_delete=models.CASCADE
    )
    cause = models.ForeignKey(
        CauseCategory, verbose_name=_("cause"), related_name="+", on_delete=models.PROTECT
    )
    classified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("classified by"), related_name="+", on_delete=models.PROTECT
    )
    note = models.TextField(_("note"), blank=True)
    created_at = models.DateTimeField(_("classified at"), auto_now_add=True)

    class Meta:
        ordering = ["report", "created_at", "pk"]
        verbose_name = _("cause classification")
        verbose_name_plural = _("cause classifications")

    def __str__(self) -> str:
        return f"{self.report_id}: {self.cause.code}"


class AudienceEntry(models.Model):
    """One way of naming recipients: everyone in CI, a sector, an organization type, an organization
    or a person. Exactly one of the fields is set."""

    all_ci = models.BooleanField(_("all critical infrastructure"), default=False)
    sector = models.ForeignKey(
        "directory.Sector",
        verbose_name=_("sector"),
        related_name="+",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
    )
    organization_type = models.CharField(
        _("organization type"), max_length=32, choices=OrganizationType.choices, blank=True
    )
    organization = models.ForeignKey(
        "directory.Organization",
        verbose_name=_("organization"),
        related_name="+",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("person"),
        related_name="+",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
    )

    class Meta:
        abstract = True

    def __str__(self) -> str:
        if self.all_ci:
            return str(_("All critical infrastructure"))
        return str(self.sector or self.get_organization_type_display() or self.organization or self.user)

    @classmethod
    def matching(cls, principal: Principal) -> models.QuerySet:
        """Entries that name the user, one of their organizations, its sectors or its type."""
        in_community = bool(principal.org_types & COMMUNITY_TYPES)
        return cls.objects.filter(
            (Q(all_ci=True) if in_community else NOTHING)
            | Q(sector_id__in=principal.sector_ids)
            | Q(organization_type__in=principal.org_types)
            | Q(organization_id__in=principal.org_ids)
            | Q(user_id=principal.user_id)
        )


def _exactly_one_audience(prefix: str) -> models.CheckConstraint:
    none = {"all_ci": False, "sector__isnull": True, "organization__isnull": True, "user__isnull": True}
    exactly_one = (
        Q(**(none | {"all_ci": True}), organization_type="")
        | Q(**(none | {"sector__isnull": False}), organization_type="")
        | (Q(**none) & ~Q(organization_type=""))
        | Q(**(none | {"organization__isnull": False}), organization_type="")
        | Q(**(none | {"user__isnull": False}), organization_type="")
    )
    return models.CheckConstraint(condition=exactly_one, name=f"{prefix}_audience_exactly_one")


class Advisory(models.Model):
    """A warning or piece of information (情報提供) sent down the chain to an audience."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    issuer = models.ForeignKey(
        "directory.Organization",
        verbose_name=_("issuer"),
        related_name="advisories_issued",
        on_delete=models.PROTECT,
    )
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("issued by"), related_name="+", on_delete=models.PROTECT
    )
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body"))
    severity = models.CharField(
        _("severity"), max_length=16, choices=Severity.choices, default=Severity.MEDIUM
    )
    tlp = models.CharField(_("TLP"), max_length=16, choices=Tlp.choices, default=Tlp.AMBER)
    ack_required = models.BooleanField(_("acknowledgement required"), default=False)
    ack_due = models.DateTimeField(_("acknowledge by"), null=True, blank=True)
    source_reports = models.ManyToManyField(
        Report, verbose_name=_("stems from reports"), related_name="advisories", blank=True
    )
    created_at = models.DateTimeField(_("issued at"), auto_now_add=True, db_index=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("advisory")
        verbose_name_plural = _("advisories")
        constraints = [
            models.CheckConstraint(
                condition=Q(ack_required=True) | Q(ack_due__isnull=True),
                name="advisory_due_only_when_ack_required",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @classmethod
    def access_rule(cls, principal: Principal, action: str) -> Q:
        if not principal.is_authenticated:
            return NOTHING
        audience = AdvisoryAudience.matching(principal).values("advisory_id")
        named = AdvisoryAudience.objects.filter(user_id=principal.user_id).values("advisory_id")
        issuer = Q(issuer_id__in=principal.org_ids)
        visible = issuer | (~Q(tlp=Tlp.RED) & Q(pk__in=audience)) | (Q(tlp=Tlp.RED) & Q(pk__in=named))
        if action in (Action.VIEW, Action.ACKNOWLEDGE):
            return visible
        if action == Action.CHANGE:
            # The acknowledgement table belongs to the issuer's chain.
            return Q(issuer_id__in=principal.org_ids_with_role(*FORWARD_ROLES, Role.ANALYST))
        return NOTHING


class AdvisoryObservable(models.Model):
    """An indicator an advisory passes on, typed and validated like a report's."""

    advisory = models.ForeignKey(
        Advisory, verbose_name=_("advisory"), related_name="observables", on_delete=models.CASCADE
    )
    type = models.CharField(_("type"), max_length=32, choices=ObservableType.choices)
    value = models.CharField(_("value"), max_length=2048)

    class Meta:
        ordering = ["advisory", "pk"]
        verbose_name = _("advisory observable")
        verbose_name_plural = _("advisory observables")
        indexes = [models.Index(fields=["type", "value"], name="advisory_observable_value_idx")]
        constraints = [
            models.UniqueConstraint(fields=["advisory", "type", "value"], name="advisory_observable_once")
        ]

    def __str__(self) -> str:
        return f"{self.type}: {self.value}"


class AdvisoryAttachment(StoredFile):
    """A file sent with an advisory; served only as a download to those who may see the advisory."""

    advisory = models.ForeignKey(
        Advisory, verbose_name=_("advisory"), related_name="attachments", on_delete=models.CASCADE
    )
    blob = models.ForeignKey(
        Blob, verbose_name=_("content"), related_name="advisory_attachments", on_delete=models.PROTECT
    )

    class Meta:
        ordering = ["advisory", "created_at", "filename"]
        verbose_name = _("advisory attachment")
        verbose_name_plural = _("advisory attachments")


class AdvisoryAudience(AudienceEntry):
    advisory = models.ForeignKey(
        Advisory, verbose_name=_("advisory"), related_name="audience", on_delete=models.CASCADE
    )

    class Meta:
        ordering = ["advisory", "pk"]
        verbose_name = _("advisory audience entry")
        verbose_name_plural = _("advisory audience entries")
        constraints = [_exactly_one_audience("advisory")]


class InboxItem(models.Model):
    """An advisory delivered to one person: their web inbox row, created by the fan-out task."""

    advisory = models.ForeignKey(
        Advisory, verbose_name=_("advisory"), related_name="inbox_items", on_delete=models.CASCADE
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recipient"),
        related_name="inbox_items",
        on_delete=models.CASCADE,
    )
    organization = models.ForeignKey(
        "directory.Organization", verbose_name=_("organization"), related_name="+", on_delete=models.CASCADE
    )
    delivered_at = models.DateTimeField(_("delivered at"), auto_now_add=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        ordering = ["-delivered_at", "pk"]
        verbose_name = _("inbox item")
        verbose_name_plural = _("inbox items")
        constraints = [models.UniqueConstraint(fields=["advisory", "user"], name="inbox_item_unique")]
        indexes = [models.Index(fields=["user", "-delivered_at"], name="inbox_user_recent_idx")]

    def __str__(self) -> str:
        return f"{self.advisory_id} → {self.user_id}"


class Acknowledgement(models.Model):
    """An organization's acknowledgement of an advisory, given by a named person."""

    advisory = models.ForeignKey(
        Advisory, verbose_name=_("advisory"), related_name="acknowledgements", on_delete=models.CASCADE
    )
    organization = models.ForeignKey(
        "directory.Organization", verbose_name=_("organization"), related_name="+", on_delete=models.PROTECT
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("acknowledged by"),
        related_name="+",
        on_delete=models.PROTECT,
    )
    created_at = models.DateTimeField(_("acknowledged at"), auto_now_add=True)

    class Meta:
        ordering = ["advisory", "created_at"]
        verbose_name = _("acknowledgement")
        verbose_name_plural = _("acknowledgements")
        constraints = [
            models.UniqueConstraint(fields=["advisory", "organization"], name="acknowledgement_once_per_org"),
        ]

    def __str__(self) -> str:
        return f"{self.organization} ✓ {self.advisory_id}"


class AnonymizedReport(models.Model):
    """A sanitized, separately labelled copy of a report for other sectors (seed §5.3).

    It holds no reference to the reporter, and its own timestamps and id: nothing about it
    identifies the source except the link to the original, shown only to those who may see that.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    source = models.ForeignKey(
        Report, verbose_name=_("original report"), related_name="anonymized_copies", on_delete=models.PROTECT
    )
    sector = models.ForeignKey(
        "directory.Sector",
        verbose_name=_("sector"),
        related_name="+",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        help_text=_("Empty when the sector is generalized away."),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=ReportKind.choices)
    cause = models.ForeignKey(
        CauseCategory, verbose_name=_("cause"), related_name="+", on_delete=models.PROTECT
    )
    title = models.CharField(_("title"), max_length=200)
    narrative = models.TextField(_("narrative"))
    # Month only: a precise time could single out the source.
    occurred_month = models.DateField(_("month of occurrence"), null=True, blank=True)
    tlp = models.CharField(_("TLP"), max_length=16, choices=Tlp.choices, default=Tlp.GREEN)
    # Who made the copy is kept in the audit trail only: when the reporting organization makes it
    # itself, its creator would name the source.
    created_at = models.DateTimeField(_("published at"), auto_now_add=True, db_index=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("anonymized report")
        verbose_name_plural = _("anonymized reports")

    def __str__(self) -> str:
        return self.title

    @classmethod
    def access_rule(cls, principal: Principal, action: str) -> Q:
        if not principal.is_authenticated:
            return NOTHING
        if action != Action.VIEW:
            return NOTHING
        audience = AnonymizedReportAudience.matching(principal).values("copy_id")
        return (~Q(tlp=Tlp.RED) & Q(pk__in=audience)) | Q(
            tlp=Tlp.RED,
            pk__in=AnonymizedReportAudience.objects.filter(user_id=principal.user_id).values("copy_id"),
        )


class AnonymizedReportAudience(AudienceEntry):
    copy = models.ForeignKey(
        AnonymizedReport,
        verbose_name=_("anonymized report"),
        related_name="audience",
        on_delete=models.CASCADE,
    )

    class Meta:
        ordering = ["copy", "pk"]
        verbose_name = _("anonymized report audience entry")
        verbose_name_plural = _("anonymized report audience entries")
        constraints = [_exactly_one_audience("anonymized_report")]


class AnonymizedObservable(models.Model):
    """An observable the creator of the copy chose to keep."""

    copy = models.ForeignKey(
        AnonymizedReport,
        verbose_name=_("anonymized report"),
        related_name="observables",
        on_delete=models.CASCADE,
    )
    type = models.CharField(_("type"), max_length=32, choices=ObservableType.choices)
    value = models.CharField(_("value"), max_length=2048)

    class Meta:
        ordering = ["copy", "pk"]
        verbose_name = _("anonymized observable")
        verbose_name_plural = _("anonymized observables")

    def __str__(self) -> str:
        return f"{self.type}: {self.value}"


class WebhookEndpoint(models.Model):
    """Where an organization wants advisories pushed, signed with HMAC-SHA256 over the body."""

    organization = models.ForeignKey(
        "directory.Organization",
        verbose_name=_("organization"),
        related_name="webhooks",
        on_delete=models.CASCADE,
    )
    url = models.URLField(_("URL"), max_length=500)
    secret = models.CharField(_("signing secret"), max_length=128)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["organization", "pk"]
        verbose_name = _("webhook")
        verbose_name_plural = _("webhooks")

    def __str__(self) -> str:
        return self.url


class WebhookAttempt(models.Model):
    """One try at delivering one advisory to one webhook, kept for the organization to inspect."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, verbose_name=_("webhook"), related_name="attempts", on_delete=models.CASCADE
    )
    advisory = models.ForeignKey(
        Advisory, verbose_name=_("advisory"), related_name="+", on_delete=models.CASCADE
    )
    attempt = models.PositiveSmallIntegerField(_("attempt"))
    status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("tried at"), auto_now_add=True)

    class Meta:
        ordering = ["endpoint", "created_at"]
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")

    def __str__(self) -> str:
        return f"{self.endpoint} #{self.attempt}: {self.status_code or self.error}"


class NotificationLog(models.Model):
    """A notification Renkei sent by itself, kept so that it is never sent twice: up to which audience
    entry people were told about a report (a forward then only tells those it added), and each
    deadline or acknowledgement reminder. What a reminder said is in the message templates; who
    received it follows from the audience at that time."""

    kind = models.CharField(_("kind"), max_length=32, choices=NotificationKind.choices)
    report = models.ForeignKey(
        Report,
        verbose_name=_("report"),
        related_name="notifications",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
    )
    advisory = models.ForeignKey(
        Advisory,
        verbose_name=_("advisory"),
        related_name="notifications",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
    )
    # Audience told: the report event, and the newest audience entry it reached.
    event = models.CharField(_("event"), max_length=16, blank=True)
    through_grant = models.PositiveBigIntegerField(_("told up to audience entry"), null=True, blank=True)
    # Deadline reminder: which stage, and whether it was due soon or overdue.
    stage = models.CharField(_("stage"), max_length=32, blank=True)
    state = models.CharField(_("state"), max_length=16, blank=True)
    # Acknowledgement reminder: the organizations reminded.
    organizations = models.JSONField(_("organizations"), default=list, blank=True)
    recipients = models.PositiveIntegerField(_("recipients"), default=0)
    sent_at = models.DateTimeField(_("sent at"), default=timezone.now)

    class Meta:
        ordering = ["sent_at", "pk"]
        verbose_name = _("notification sent")
        verbose_name_plural = _("notifications sent")
        constraints = [
            models.CheckConstraint(
                condition=(Q(report__isnull=False) & Q(advisory__isnull=True))
                | (Q(report__isnull=True) & Q(advisory__isnull=False)),
                name="notification_log_report_xor_advisory",
            ),
            # Two reminder runs at once (cron and `renkei up`) cannot both remind of one stage.
            models.UniqueConstraint(
                fields=["report", "stage", "state"],
                condition=Q(kind=NotificationKind.DEADLINE_REMINDER),
                name="notification_log_one_deadline_reminder",
            ),
        ]
        indexes = [
            models.Index(fields=["report", "kind"], name="notification_log_report_idx"),
            models.Index(fields=["advisory", "kind"], name="notification_log_advisory_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.report_id or self.advisory_id} {self.sent_at:%Y-%m-%d %H:%M}"
