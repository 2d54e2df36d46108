"""The CIP community: sectors, organizations, people, their roles and contact routes (seed §1, §3.1)."""

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from renkei.core.access import NOTHING, Principal, RestrictedQuerySet
from renkei.core.choices import Action
from renkei.directory.choices import COMMUNITY_TYPES, ContactKind, Language, OrganizationType, Role, SizeClass

MINIMUM_CONTACT_ROUTES = 2


def localized(name_ja: str, name_en: str) -> str:
    """The English name when English is active and one exists; Japanese otherwise."""
    if name_en and (get_language() or "ja").startswith("en"):
        return name_en
    return name_ja


def may_administer_directory(principal: Principal) -> bool:
    """National-centre coordinators and administrators (and superusers) run the directory."""
    return principal.is_superuser or principal.has_role(
        Role.COORDINATOR, Role.ORG_ADMIN, org_types=(OrganizationType.NATIONAL_CENTER,)
    )


class Sector(models.Model):
    """A critical-infrastructure sector (重要インフラ分野). Reference data that administrators edit."""

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name_ja = models.CharField(_("name (Japanese)"), max_length=100, unique=True)
    name_en = models.CharField(_("name (English)"), max_length=150, blank=True)
    ministries = models.ManyToManyField(
        "directory.Organization",
        verbose_name=_("sector ministries"),
        related_name="overseen_sectors",
        blank=True,
        limit_choices_to={"type": OrganizationType.SECTOR_MINISTRY},
    )
    active = models.BooleanField(_("active"), default=True)
    added_in = models.PositiveSmallIntegerField(_("year added"), null=True, blank=True)
    display_order = models.PositiveSmallIntegerField(_("display order"), default=0)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["display_order", "code"]
        verbose_name = _("sector")
        verbose_name_plural = _("sectors")

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return localized(self.name_ja, self.name_en)

    @classmethod
    def access_rule(cls, principal: Principal, action: str) -> Q:
        if not principal.is_authenticated:
            return NOTHING
        if action == Action.VIEW:
            return Q()
        return Q() if may_administer_directory(principal) else NOTHING


class Organization(models.Model):
    """A body in the CIP community: operator, CEPTOAR, ministry, the national centre …"""

    type = models.CharField(_("type"), max_length=32, choices=OrganizationType.choices, db_index=True)
    name_ja = models.CharField(_("name (Japanese)"), max_length=200, unique=True)
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    sectors = models.ManyToManyField(
        Sector, verbose_name=_("sectors"), related_name="organizations", blank=True
    )
    size = models.CharField(_("size class"), max_length=8, choices=SizeClass.choices, blank=True)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent body"),
        related_name="children",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        help_text=_("The body this organization reports through, e.g. an operator's CEPTOAR."),
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["type", "name_ja"]
        verbose_name = _("organization")
        verbose_name_plural = _("organizations")
        constraints = [
            models.CheckConstraint(condition=~Q(parent=models.F("pk")), name="organization_not_own_parent"),
            models.CheckConstraint(
                condition=Q(size="") | Q(type=OrganizationType.OPERATOR) | Q(type=OrganizationType.VENDOR),
                name="organization_size_only_for_companies",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return localized(self.name_ja, self.name_en)

    @classmethod
    def access_rule(cls, principal: Principal, action: str) -> Q:
        if not principal.is_authenticated:
            return NOTHING
        if action == Action.VIEW:
            # Names and structure are shared knowledge inside the CIP community; international
            # partners and the public see only themselves and the national centre they deal with.
            if principal.is_superuser or principal.org_types & COMMUNITY_TYPES:
                return Q()
            return Q(pk__in=principal.org_ids) | Q(type=OrganizationType.NATIONAL_CENTER)
        if action == Action.VIEW_CONTACTS:
            return cls.chain_of(principal)
        if action == Action.CHANGE:
            if may_administer_directory(principal):
                return Q()
            return Q(pk__in=principal.org_ids_with_role(Role.ORG_ADMIN))
        return NOTHING

    @classmethod
    def chain_of(cls, principal: Principal) -> Q:
        """Organizations in the user's reporting chain, whose people and routes the user may see.

        The chain is the user's own organizations, their parent bodies (CEPTOARs) and the bodies
        they are parent of, the ministries of their sectors (and, for a ministry, the organizations
        of the sectors it oversees), and the national centre. The national centre sees everyone.
        """
        if principal.is_superuser or principal.is_national_center:
            return Q()
        sector_members = cls.sectors.through.objects.filter(
            sector_id__in=principal.overseen_sector_ids
        ).values("organization_id")
        own_ministries = Sector.ministries.through.objects.filter(sector_id__in=principal.sector_ids).values(
            "organization_id"
        )
        return (
            Q(pk__in=principal.org_ids)
            | Q(pk__in=principal.parent_ids)
            | Q(parent_id__in=principal.org_ids)
            | Q(type=OrganizationType.NATIONAL_CENTER)
            | Q(pk__in=own_ministries)
            | Q(pk__in=sector_members)
        )


class RestrictedUserManager(UserManager.from_queryset(RestrictedQuerySet)):
    pass


class User(AbstractUser):
    """A person who uses Renkei. Organizations and roles come through Membership."""

    display_name = models.CharField(_("display name"), max_length=150, blank=True)
    language = models.CharField(_("language"), max_length=8, choices=Language.choices, blank=True)

    objects = RestrictedUserManager()

    class Meta:
        ordering = ["username"]
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            # "Tanaka" and "tanaka" are one person to everyone who reads a name.
            models.UniqueConstraint(Lower("username"), name="user_username_unique_ignoring_case"),
        ]

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username

    @classmethod
    def access_rule(cls, principal: Principal, action: str) -> Q:
        """People are visible through the organizations in the viewer's chain; one always sees oneself."""
        if not principal.is_authenticated:
            return NOTHING
        if action not in (Action.VIEW, Action.VIEW_CONTACTS, Action.CHANGE):
            return NOTHING
        if action == Action.CHANGE and not may_administer_directory(principal):
            # An organization's administrator manages people who belong only to organizations it
            # administers: never a ministry or national-centre official who also holds a role there.
            administered = principal.org_ids_with_role(Role.ORG_ADMIN)
            elsewhere = Membership.objects.exclude(organization_id__in=administered).values("user_id")
            members = Membership.objects.filter(organization_id__in=administered).values("user_id")
            return Q(pk=principal.user_id) | (Q(pk__in=members) & ~Q(pk__in=elsewhere))
        memberships = Membership.objects.filter(Membership.access_rule(principal, action)).values("user_id")
        return Q(pk=principal.user_id) | Q(pk__in=memberships)


class Membership(models.Model):
    """A person's role in an organization. A person may hold several roles."""

    user = models.ForeignKey(
        User, verbose_name=_("user"), related_name="memberships", on_delete=models.CASCADE
    )
    organization = models.ForeignKey(
        Organization, verbose_name=_("organization"), related_name="memberships", on_delete=models.PROTECT
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["organization__name_ja", "user__username", "role"]
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "organization", "role"], name="membership_unique_role"),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.organization} ({self.get_role_display()})"

    @classmethod
    def access_rule(cls, principal: Principal, action: str) -> Q:
        if not principal.is_authenticated:
            return NOTHING
        if action in (Action.VIEW, Action.VIEW_CONTACTS):
            return Q(organization__in=Organization.objects.filter(Organization.chain_of(principal)))
        if action == Action.CHANGE:
            return Q(
                organization__in=Organization.objects.filter(Organization.access_rule(principal, action))
            )
        return NOTHING


class ContactRoute(models.Model):
    """A way to reach an organization. Every organization keeps at least two (seed §3.1)."""

    organization = models.ForeignKey(
        Organization, verbose_name=_("organization"), related_name="contact_routes", on_delete=models.CASCADE
    )
    kind = models.CharField(_("kind"), max_length=8, choices=ContactKind.choices)
    value = models.CharField(_("address or number"), max_length=254)
    label = models.CharField(_("label"), max_length=100, blank=True)
    priority = models.PositiveSmallIntegerField(_("priority"), default=1)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["organization__name_ja", "priority", "pk"]
        verbose_name = _("contact route")
        verbose_name_plural = _("contact routes")
        constraints = [
            models.UniqueConstraint(fields=["organization", "kind", "value"], name="contact_route_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.value}"

    @classmethod
    def access_rule(cls, principal: Principal, action: str) -> Q:
        return Membership.access_rule(principal, action)
