"""The one place that decides who may do what.

Every list, detail, search, export, feed and notification asks `restrict(queryset, user, action)`
(or `Model.objects.restrict(user, action)`), which turns the model's access rule into a database
filter. Single objects are fetched with `get_restricted_or_404`, which raises the same 404 for an
object that does not exist and one the user may not see, so a forbidden object looks missing.

A model takes part by defining `access_rule(principal, action) -> Q` as a classmethod. Rules must
not multiply rows (use `pk__in=<subquery>` rather than joins across many-valued relations), so that
restricted querysets stay plain filters the database can plan.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models import Q
from django.http import Http404
from django.utils.translation import gettext as _

from renkei.core.choices import Action

NOTHING = Q(pk__in=[])


@dataclass(frozen=True)
class Principal:
    """What access rules need to know about a user, loaded once per request."""

    user_id: int | None = None
    is_superuser: bool = False
    # (organization id, organization type, role): roles are held within one organization.
    memberships: frozenset[tuple[int, str, str]] = frozenset()
    # Sectors the user's organizations belong to, and sectors they oversee as ministry.
    sector_ids: frozenset[int] = frozenset()
    overseen_sector_ids: frozenset[int] = frozenset()
    parent_ids: frozenset[int] = frozenset()

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None

    @property
    def org_ids(self) -> frozenset[int]:
        return frozenset(org for org, _type, _role in self.memberships)

    @property
    def org_types(self) -> frozenset[str]:
        return frozenset(org_type for _org, org_type, _role in self.memberships)

    @property
    def is_national_center(self) -> bool:
        return "national_center" in self.org_types

    def has_role(self, *roles: str, org_id: int | None = None, org_types: tuple[str, ...] = ()) -> bool:
        orgs = self.org_ids_with_role(*roles, org_types=org_types)
        return org_id in orgs if org_id is not None else bool(orgs)

    def org_ids_with_role(self, *roles: str, org_types: tuple[str, ...] = ()) -> frozenset[int]:
        return frozenset(
            org
            for org, org_type, role in self.memberships
            if role in roles and (not org_types or org_type in org_types)
        )


ANONYMOUS = Principal()


def principal_for(user) -> Principal:
    """The user's Principal, computed once per user object (so once per request)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return ANONYMOUS
    cached = getattr(user, "_renkei_principal", None)
    if cached is not None:
        return cached

    Membership = apps.get_model("directory", "Membership")
    Organization = apps.get_model("directory", "Organization")
    Sector = apps.get_model("directory", "Sector")

    memberships = list(
        Membership.objects.filter(user_id=user.pk, organization__active=True).values_list(
            "organization_id", "role", "organization__type", "organization__parent_id"
        )
    )
    org_ids = frozenset(m[0] for m in memberships)
    principal = Principal(
        user_id=user.pk,
        is_superuser=user.is_superuser,
        memberships=frozenset((m[0], m[2], m[1]) for m in memberships),
        sector_ids=frozenset(
            Organization.sectors.through.objects.filter(organization_id__in=org_ids).values_list(
                "sector_id", flat=True
            )
        ),
        overseen_sector_ids=frozenset(
            Sector.ministries.through.objects.filter(organization_id__in=org_ids).values_list(
                "sector_id", flat=True
            )
        ),
        parent_ids=frozenset(m[3] for m in memberships if m[3] is not None),
    )
    user._renkei_principal = principal
    return principal


def forget_principal(user) -> None:
    """Drop the cached Principal after the user's memberships change."""
    if hasattr(user, "_renkei_principal"):
        del user._renkei_principal


def restrict(queryset: models.QuerySet, user, action: str = Action.VIEW) -> models.QuerySet:
    """The objects of `queryset` that `user` may perform `action` on, as a database filter."""
    rule = getattr(queryset.model, "access_rule", None)
    if rule is None:
        raise ImproperlyConfigured(f"{queryset.model.__name__} has no access_rule")
    return queryset.filter(rule(principal_for(user), action))


def get_restricted_or_404(queryset: models.QuerySet, user, action: str = Action.VIEW, **lookup):
    """One object by `lookup`, or the same 404 whether it is missing or forbidden."""
    try:
        return restrict(queryset, user, action).get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError) as error:
        raise Http404(_("Not found.")) from error


class RestrictedQuerySet(models.QuerySet):
    def restrict(self, user, action: str = Action.VIEW) -> RestrictedQuerySet:
        return restrict(self, user, action)
