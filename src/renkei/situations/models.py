"""Situations (seed 課題3, §3.3): alert levels up to a large-scale cyber-attack situation, the rules that
recognize one, the decisions that declare it, who joins at each level, and spill-over warnings.

A rule never declares anything: it opens a proposal, and people decide, two of them for every
decision. Joining a situation gives an organization access to the situation's reports through
ordinary report grants (see services.py), so the one access function keeps answering for reports.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from renkei.core.access import NOTHING, Principal, RestrictedQuerySet
from renkei.core.choices import Action
from renkei.directory.choices import OrganizationType
from renkei.directory.models import localized
from renkei.sharing.choices import Tlp
from renkei.situations.choices import (
    DECISION_ROLES,
    DecisionKind,
    DecisionStatus,
    LogKind,
    ParticipantSource,
    ProposalStatus,
    RuleKind,
    SituationStatus,
    SpilloverStatus,
)

# Labels a roster may open up to. The sources' labels still apply: TLP:AMBER+STRICT stays with the
# organizations its source chose, TLP:RED with the people it named.
ROSTER_TLP = (Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER)
ROSTER_LABELS = [(value, label) for value, label in Tlp.choices if value in ROSTER_TLP]


def _national_centre_rule(principal: Principal, action: str) -> Q:
    """Rules, proposals and spill-over proposals are the national centre's working material."""
    if not principal.is_authenticated:
        return NOTHING
    if action == Action.VIEW and principal.is_national_center:
        return Q()
    if action == Action.CHANGE and principal.has_role(
        *DECISION_ROLES, org_types=(OrganizationType.NATIONAL_CENTER,)
    ):
        return Q()
    return NOTHING


class AlertLevel(models.Model):
    """One step of the ordered alert scale, e.g. 通常 → 注意 → 警戒 → 大規模サイバー攻撃事態."""

    code = models.SlugField(_("code"), max_length=32, unique=True)
    rank = models.PositiveSmallIntegerField(_("rank"), unique=True, help_text=_("Higher is more severe."))
    name_ja = models.CharField(_("name (Japanese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=150, blank=True)
    colour = models.CharField(
        _("colour"),
        max_length=7,
        default="#888888",
        help_text=_("A CSS colour such as #d33 for the level's badge."),
    )

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["rank"]
        verbose_name = _("alert level")
        verbose_name_plural = _("alert levels")
        constraints = [
            models.CheckConstraint(condition=Q(colour__regex=r"^#[0-9a-fA-F]{6}$"), name="alert_level_colour")
        ]

    def __str__(self) -> str:
        return localized(self.name_ja, self.name_en)

    @classmethod
    def access_rule(cls, principal: Principal, action: str) -> Q:
        return _national_centre_rule(principal, action)


class SectorDependency(models.Model):
    """Sector `dependent` needs sector `depended_on` (electricity → almost everything)."""

    depended_on = models.ForeignKey(
        "directory.Sector",
        verbose_name=_("sector depended on"),
        related_name="dependents",
        on_delete=models.CASCADE,
    )
    dependent = models.ForeignKey(
        "directory.Sector",
        verbose_name=_("dependent sector"),
        related_name="dependencies",
        on_delete=models.CASCADE,
    )
    strength = models.PositiveSmallIntegerField(
        _("strength"), help_text=_("1 (weak) to 5 (the dependent sector stops without it).")
    )
    note = models.CharField(_("note"), max_length=300, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["depended_on", "dependent"]
        verbose_name = _("sector dependency")
        verbose_name_plural = _("sector dependencies")
        constraints = [
            models.UniqueConstraint(fields=["depended_on", "dependent"], name="sector_dependency_unique"),
            models.CheckConstraint(
                condition=~Q(depended_on=F("dependent")), name="sector_dependency_not_self"
            ),
            models.CheckConstraint(
                condition=Q(strength__gte=1, strength__lte=5), name="sector_dependency_strength"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dependent} → {self.depended_on} ({self.strength})"

    @classmethod
    def access_rule(cls, principal: Principal, action: str) -> Q:
        return _national_centre_rule(principal, action)


class RecognitionRule(models.Model):
    """A condition on the report stream that proposes a level when it holds (never declares one)."""

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name_ja = models.CharField(_("name (Japanese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    kind = models.CharField(_("kind"), max_length=32, choices=RuleKind.choices)
    level = models.ForeignKey(
        AlertLevel, verbose_name=_("level proposed"), related_name="rules", on_delete=models.PROTECT
    )
    active = models.BooleanField(_("switched on"), default=False)
    cause_code = models.CharField(
        _("cause"),
        max_length=64,
        blank=True,
        help_text=_("A cause code; its subcategories count too (intentional covers intentional.dos)."),
    )
    min_reports = models.PositiveIntegerField(_("at least this many reports"), null=True, blank=True)
    min_sectors = models.PositiveIntegerField(_("from at least this many sectors"), null=True, blank=True)
    min_organizations = models.PositiveIntegerField(
        _("from at least this many organizations"), null=True, blank=True
    )
    min_users = models.PositiveIntegerField(_("affecting at least this many users"), null=True, blank=True)
    min_dependents = models.PositiveIntegerField(
        _("with at least this many dependent sectors"), null=True, blank=True
    )
    window_hours = models.PositiveIntegerField(_("within hours"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["code"]
        verbose_name = _("recognition rule")
        verbose_name_plural = _("recognition rules")
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind=RuleKind.CAUSE_ACROSS_SECTORS)
                | Q(min_reports__gte=1, min_sectors__gte=1, window_hours__gte=1),
                name="rule_cause_across_sectors_thresholds",
            ),
            models.CheckConstraint(
                condition=~Q(kind=RuleKind.OUTAGE_USERS) | Q(min_users__gte=1),
                name="rule_outage_users_threshold",
            ),
            models.CheckConstraint(
                condition=~Q(kind=RuleKind.SHARED_OBSERVABLE)
                | Q(min_organizations__gte=2, window_hours__gte=1),
                name="rule_shared_observable_thresholds",
            ),
            models.CheckConstraint(
                condition=~Q(kind=RuleKind.DEPENDED_ON_SECTOR) | Q(min_dependents__gte=1),
                name="rule_depended_on_sector_threshold",
            ),
        ]

    def __str__(self) -> str:
        return localized(self.name_ja, self.name_en)

    @classmethod
    def access_rule(cls, principal: Principal, action: str) -> Q:
        return _national_centre_rule(principal, action)


class Proposal(models.Model):
    """A rule fired: these reports suggest this level. People declare or dismiss it."""

    rule = models.ForeignKey(
        RecognitionRule, verbose_name=_("rule"), related_name="proposals", on_delete=models.PROTECT
    )
    level = models.ForeignKey(
        AlertLevel, verbose_name=_("level proposed"), related_name="proposals", on_delete=models.PROTECT
    )
    status = models.CharField(
        _("status"), max_length=16, choices=ProposalStatus.choices, default=ProposalStatus.OPEN
    )
    reports = models.ManyToManyField(
        "sharing.Report",
        verbose_name=_("reports"),
        related_name="situation_proposals",
        through="ProposalReport",
    )
    sectors = models.ManyToManyField(
        "directory.Sector", verbose_name=_("sectors"), related_name="+", blank=True
    )
    created_at = models.DateTimeField(_("proposed at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        related_name="+",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_reason = models.TextField(_("reason"), blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("situation proposal")
        verbose_name_plural = _("situation proposals")
        constraints = [
            # A storm keeps one proposal growing instead of opening one per report.
            models.UniqueConstraint(
                fields=["rule"], condition=Q(status=ProposalStatus.OPEN), name="proposal_one_open_per_rule"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule} → {self.level}"

    @classmethod
    def access_rule(cls, principal: Principal, action: str) -> Q:
        return _national_centre_rule(principal, action)


class ProposalReport(models.Model):
    proposal = models.ForeignKey(Proposal, on_delete=models.CASCADE, related_name="report_links")
    report = models.ForeignKey("sharing.Report", on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["added_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["proposal", "report"], name="proposal_report_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.proposal_id}: {self.report_id}"


class RosterEntry(models.Model):
    """Who joins the response at a level (and every level above it), and what they may then see."""

    level = models.ForeignKey(
        AlertLevel, verbose_name=_("from level"), related_name="roster", on_delete=models.CASCADE
    )
    organization_type = models.CharField(
        _("organization type"), max_length=32, choices=OrganizationType.choices, blank=True
    )
    organization = models.ForeignKey(
        "directory.Organization",
        verbose_name=_("organization"),
        related_name="+",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
    )
    affected_sectors_only = models.BooleanField(
        _("only those of the affected sectors"),
        default=False,
        help_text=_("For ministries and CEPTOARs: join only when the situation covers their sector."),
    )
    max_tlp = models.CharField(
        _("may see reports up to"), max_length=16, choices=ROSTER_LABELS, default=Tlp.AMBER
    )

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["level", "organization_type", "organization"]
        verbose_name = _("roster entry")
        verbose_name_plural = _("roster entries")
        constraints = [
            models.CheckConstraint(
                condition=(Q(organization__isnull=False) & Q(organization_type=""))
                | (Q(organization__isnull=True) & ~Q(organization_type="")),
                name="roster_entry_type_xor_organization",
            ),
            models.CheckConstraint(condition=Q(max_tlp__in=ROSTER_TLP), name="roster_entry_up_to_amber"),
        ]

    def __str__(self) -> str:
        return f"{self.level}: {self.organization or self.get_organization_type_display()}"

    @classmethod
    def access_rule(cls, principal: Principal, action: str) -> Q:
        return _national_centre_rule(principal, action)


class Situation(models.Model):
    """A declared situation at a level, nationwide or for some sectors, with its response structure."""

    title = models.CharField(_("title"), max_length=200)
    level = models.ForeignKey(
        AlertLevel, verbose_name=_("level"), related_name="situations", on_delete=models.PROTECT
    )
    status = models.CharField(
        _("status"), max_length=16, choices=SituationStatus.choices, default=SituationStatus.PENDING_APPROVAL
    )
    nationwide = models.BooleanField(_("nationwide"), default=True)
    sectors = models.ManyToManyField(
        "directory.Sector", verbose_name=_("affected sectors"), related_name="situations", blank=True
    )
    proposal = models.OneToOneField(
        Proposal,
        verbose_name=_("proposal"),
        related_name="situation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
    )
    reports = models.ManyToManyField(
        "sharing.Report", verbose_name=_("reports"), related_name="situations", through="SituationReport"
    )
    declared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("declared by"), related_name="+", on_delete=models.PROTECT
    )
    created_at = models.DateTimeField(_("declared at"), auto_now_add=True)
    activated_at = models.DateTimeField(_("in force since"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("situation")
        verbose_name_plural = _("situations")

    def __str__(self) -> str:
        return self.title

    @classmethod
    def access_rule(cls, principal: Principal, action: str) -> Q:
        if not principal.is_authenticated:
            return NOTHING
        if action == Action.CHANGE:
            return _national_centre_rule(principal, action)
        if action not in (Action.VIEW, Action.COMMENT):
            return NOTHING
        if principal.is_national_center:
            return Q()
        joined = Participant.objects.filter(organization_id__in=principal.org_ids, left_at__isnull=True)
        return Q(pk__in=joined.values("situation_id"))


class SituationReport(models.Model):
    situation = models.ForeignKey(Situation, on_delete=models.CASCADE, related_name="report_links")
    report = models.ForeignKey("sharing.Report", on_delete=models.CASCADE, related_name="+")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, related_name="+", on_delete=models.PROTECT, null=True, blank=True
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["added_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["situation", "report"], name="situation_report_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.situation_id}: {self.report_id}"


class Decision(models.Model):
    """Declaring, raising, lowering or ending: asked by one person, in force once another approves."""

    situation = models.ForeignKey(
        Situation, verbose_name=_("situation"), related_name="decisions", on_delete=models.CASCADE
    )
    kind = models.CharField(_("decision"), max_length=16, choices=DecisionKind.choices)
    level = models.ForeignKey(
        AlertLevel, verbose_name=_("level"), related_name="+", on_delete=models.PROTECT, null=True, blank=True
    )
    reason = models.TextField(_("reason"))
    status = models.CharField(
        _("status"), max_length=16, choices=DecisionStatus.choices, default=DecisionStatus.PENDING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("asked by"), related_name="+", on_delete=models.PROTECT
    )
    requested_at = models.DateTimeField(_("asked at"), auto_now_add=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("approved by"),
        related_name="+",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
    )
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)

    class Meta:
        ordering = ["requested_at", "pk"]
        verbose_name = _("decision")
        verbose_name_plural = _("decisions")
        constraints = [
            models.UniqueConstraint(
                fields=["situation"],
                condition=Q(status=DecisionStatus.PENDING),
                name="decision_one_pending_per_situation",
            ),
            # The two-person rule, held by the database as well as the service.
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | ~Q(approved_by=F("requested_by")),
                name="decision_two_people",
            ),
            models.CheckConstraint(
                condition=Q(kind=DecisionKind.END) | Q(level__isnull=False), name="decision_level_given"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.level or ''}".strip()


class Participant(models.Model):
    """An organization in a situation's response, from the roster of its level or named for it."""

    situation = models.ForeignKey(
        Situation, verbose_name=_("situation"), related_name="participants", on_delete=models.CASCADE
    )
    organization = models.ForeignKey(
        "directory.Organization", verbose_name=_("organization"), related_name="+", on_delete=models.PROTECT
    )
    source = models.CharField(_("joined by"), max_length=16, choices=ParticipantSource.choices)
    max_tlp = models.CharField(_("may see reports up to"), max_length=16, choices=ROSTER_LABELS)
    joined_at = models.DateTimeField(_("joined at"), auto_now_add=True)
    left_at = models.DateTimeField(_("left at"), null=True, blank=True)
    notice = models.ForeignKey(
        "sharing.Advisory",
        verbose_name=_("notice"),
        related_name="+",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        help_text=_("The advisory that told the organization it joined, and collects its acknowledgement."),
    )

    class Meta:
        ordering = ["situation", "joined_at", "pk"]
        verbose_name = _("participant")
        verbose_name_plural = _("participants")
        constraints = [
            models.UniqueConstraint(
                fields=["situation", "organization"],
                condition=Q(left_at__isnull=True),
                name="participant_one_current_per_organization",
            ),
            models.CheckConstraint(condition=Q(max_tlp__in=ROSTER_TLP), name="participant_up_to_amber"),
        ]
        indexes = [models.Index(fields=["organization", "situation"], name="participant_org_idx")]

    def __str__(self) -> str:
        return f"{self.situation_id}: {self.organization}"


class SituationGrant(models.Model):
    """A report grant a situation gave a participant, withdrawn when it leaves or the situation ends."""

    situation = models.ForeignKey(Situation, on_delete=models.CASCADE, related_name="grants")
    grant = models.ForeignKey("sharing.ReportGrant", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["situation", "grant"], name="situation_grant_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.situation_id}: {self.grant_id}"


class LogEntry(models.Model):
    """A line in the situation room's log: a note, or a question that stays open until answered."""

    situation = models.ForeignKey(
        Situation, verbose_name=_("situation"), related_name="log", on_delete=models.CASCADE
    )
    kind = models.CharField(_("kind"), max_length=16, choices=LogKind.choices, default=LogKind.NOTE)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("author"), related_name="+", on_delete=models.PROTECT
    )
    organization = models.ForeignKey(
        "directory.Organization", verbose_name=_("organization"), related_name="+", on_delete=models.PROTECT
    )
    text = models.TextField(_("text"))
    created_at = models.DateTimeField(_("written at"), auto_now_add=True)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = _("log entry")
        verbose_name_plural = _("log entries")

    def __str__(self) -> str:
        return self.text[:60]

    @classmethod
    def access_rule(cls, principal: Principal, action: str) -> Q:
        return Q(situation__in=Situation.objects.filter(Situation.access_rule(principal, action)))


class SpilloverProposal(models.Model):
    """An outage in a sector others depend on: a warning for those sectors, pre-filled for a coordinator."""

    report = models.OneToOneField(
        "sharing.Report",
        verbose_name=_("report"),
        related_name="spillover_proposal",
        on_delete=models.CASCADE,
    )
    source_sector = models.ForeignKey(
        "directory.Sector",
        verbose_name=_("sector with the outage"),
        related_name="+",
        on_delete=models.PROTECT,
    )
    dependent_sectors = models.ManyToManyField(
        "directory.Sector", verbose_name=_("sectors to warn"), related_name="+"
    )
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body"))
    status = models.CharField(
        _("status"), max_length=16, choices=SpilloverStatus.choices, default=SpilloverStatus.OPEN
    )
    created_at = models.DateTimeField(_("proposed at"), auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        related_name="+",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
    )
    advisory = models.ForeignKey(
        "sharing.Advisory",
        verbose_name=_("advisory sent"),
        related_name="+",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
    )

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("spill-over warning proposal")
        verbose_name_plural = _("spill-over warning proposals")

    def __str__(self) -> str:
        return self.title

    @classmethod
    def access_rule(cls, principal: Principal, action: str) -> Q:
        return _national_centre_rule(principal, action)


class Finding(models.Model):
    """A lesson from a situation's after-action review, kept to be sent on to the plan's feedback tracker."""

    situation = models.ForeignKey(
        Situation, verbose_name=_("situation"), related_name="findings", on_delete=models.CASCADE
    )
    text = models.TextField(_("finding"))
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("author"), related_name="+", on_delete=models.PROTECT
    )
    created_at = models.DateTimeField(_("written at"), auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = _("finding")
        verbose_name_plural = _("findings")

    def __str__(self) -> str:
        return self.text[:60]
