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

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models import Q, Value
from django.http import Http404
from django.utils.translation import gettext as _

from renkei.core.choices import Action

NOTHING = Q(pk__in=[])
# People `who_may` checks in one statement: bounded so the statement stays a reasonable size.
WHO_MAY_CHUNK = 50


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
    if not _may_hold_principal(user):
        return ANONYMOUS
    if getattr(user, "_renkei_principal", None) is None:
        principals_load([user])
    return user._renkei_principal


def _may_hold_principal(user) -> bool:
    return user is not None and getattr(user, "is_authenticated", False) and user.is_active


def principals_load(users: Iterable) -> None:
    """Compute the Principals of many users at once, in three queries whatever their number, and keep
    each on its user object as `principal_for` does."""
    pending = {
        user.pk: user
        for user in users
        if _may_hold_principal(user) and getattr(user, "_renkei_principal", None) is None
    }
    if not pending:
        return
    Membership = apps.get_model("directory", "Membership")
    Organization = apps.get_model("directory", "Organization")
    Sector = apps.get_model("directory", "Sector")

    memberships = defaultdict(list)
    for user_id, *membership in Membership.objects.filter(
        user_id__in=pending, organization__active=True
    ).values_list("user_id", "organization_id", "role", "organization__type", "organization__parent_id"):
        memberships[user_id].append(membership)
    org_ids = {org_id for rows in memberships.values() for org_id, *_rest in rows}
    sectors, overseen = defaultdict(set), defaultdict(set)
    for org_id, sector_id in Organization.sectors.through.objects.filter(
        organization_id__in=org_ids
    ).values_list("organization_id", "sector_id"):
        sectors[org_id].add(sector_id)
    for org_id, sector_id in Sector.ministries.through.objects.filter(
        organization_id__in=org_ids
    ).values_list("organization_id", "sector_id"):
        overseen[org_id].add(sector_id)

    for user_id, user in pending.items():
        rows = memberships[user_id]
        user_org_ids = {org_id for org_id, *_rest in rows}
        user._renkei_principal = Principal(
            user_id=user_id,
            is_superuser=user.is_superuser,
            memberships=frozenset((org_id, org_type, role) for org_id, role, org_type, _parent in rows),
            sector_ids=frozenset(sector for org_id in user_org_ids for sector in sectors[org_id]),
            overseen_sector_ids=frozenset(sector for org_id in user_org_ids for sector in overseen[org_id]),
            parent_ids=frozenset(parent for *_rest, parent in rows if parent is not None),
        )


def forget_principal(user) -> None:
    """Drop the cached Principal after the user's memberships change."""
    if hasattr(user, "_renkei_principal"):
        del user._renkei_principal


def restrict(queryset: models.QuerySet, user, action: str = Action.VIEW) -> models.QuerySet:
    """The objects of `queryset` that `user` may perform `action` on, as a database filter."""
    return queryset.filter(_access_rule(queryset.model)(principal_for(user), action))


def _access_rule(model: type[models.Model]):
    rule = getattr(model, "access_rule", None)
    if rule is None:
        raise ImproperlyConfigured(f"{model.__name__} has no access_rule")
    return rule


def who_may(obj: models.Model, users: Iterable, action: str = Action.VIEW) -> list:
    """Those of `users` who may perform `action` on `obj`, in the order given.

    The same `restrict` as everywhere, for many people at once: one restricted lookup of `obj` per
    person, joined into a single UNION ALL statement per chunk of people instead of a query each.
    """
    users = list(users)
    principals_load(users)
    rows = type(obj)._default_manager.filter(pk=obj.pk).order_by()  # compound parts take no ORDER BY
    allowed = []
    for start in range(0, len(users), WHO_MAY_CHUNK):
        chunk = users[start : start + WHO_MAY_CHUNK]
        lookups = [
            restrict(rows, user, action).values(person=Value(index)) for index, user in enumerate(chunk)
        ]
        permitted = {row["person"] for row in lookups[0].union(*lookups[1:], all=True)}
        allowed += [user for index, user in enumerate(chunk) if index in permitted]
    return allowed


def get_restricted_or_404(queryset: models.QuerySet, user, action: str = Action.VIEW, **lookup):
    """One object by `lookup`, or the same 404 whether it is missing or forbidden."""
    try:
        return restrict(queryset, user, action).get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError) as error:
        raise Http404(_("Not found.")) from error


class RestrictedQuerySet(models.QuerySet):
    def restrict(self, user, action: str = Action.VIEW) -> RestrictedQuerySet:
        return restrict(self, user, action)
