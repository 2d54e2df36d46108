"""The directory over the API: sectors, organizations and people, read through `restrict`."""

from django.db.models import Prefetch, Q
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Query, Router

from renkei.core.access import get_restricted_or_404
from renkei.core.api import paginate
from renkei.core.choices import Action
from renkei.core.problems import invalid_param, validation_problem
from renkei.core.schemas import ProblemOut
from renkei.directory.models import ContactRoute, Membership, Organization, Sector, User
from renkei.directory.schemas import (
    OrganizationDetailOut,
    OrganizationPageOut,
    OrganizationQuery,
    PersonOut,
    PersonPageOut,
    PersonQuery,
    SectorOut,
)

router = Router(tags=["directory"])

LIST_ERRORS = {401: ProblemOut, 422: ProblemOut}
DETAIL_ERRORS = {401: ProblemOut, 404: ProblemOut}


def _organization_ref(organization: Organization) -> dict:
    return {
        "id": organization.pk,
        "name_ja": organization.name_ja,
        "name_en": organization.name_en,
        "type": organization.type,
    }


def _organization(organization: Organization) -> dict:
    return _organization_ref(organization) | {
        "sectors": [sector.code for sector in organization.sectors.all()],
        "size": organization.size or None,
        "parent": _organization_ref(organization.parent) if organization.parent else None,
        "active": organization.active,
    }


def _sector(sector: Sector) -> dict:
    return {
        "code": sector.code,
        "name_ja": sector.name_ja,
        "name_en": sector.name_en,
        "ministries": [_organization_ref(ministry) for ministry in sector.ministries.all()],
        "active": sector.active,
        "added_in": sector.added_in,
    }


def _sectors(user):
    return Sector.objects.restrict(user, Action.VIEW).prefetch_related(
        Prefetch("ministries", queryset=Organization.objects.restrict(user, Action.VIEW))
    )


def _organizations(user):
    return (
        Organization.objects.restrict(user, Action.VIEW)
        .select_related("parent")
        .prefetch_related(Prefetch("sectors", queryset=Sector.objects.only("code")))
    )


@router.get("/sectors", response={200: list[SectorOut], 401: ProblemOut}, summary="All sectors")
def sector_list(request: HttpRequest):
    """The critical-infrastructure sectors, inactive ones included, in their usual order."""
    return [_sector(sector) for sector in _sectors(request.auth)]


@router.get("/sectors/{code}", response={200: SectorOut, **DETAIL_ERRORS}, summary="One sector")
def sector_detail(request: HttpRequest, code: str):
    return _sector(get_restricted_or_404(_sectors(request.auth), request.auth, Action.VIEW, code=code))


@router.get("/organizations", response={200: OrganizationPageOut, **LIST_ERRORS}, summary="Organizations")
def organization_list(request: HttpRequest, filters: Query[OrganizationQuery]):
    """Organizations you may see, filtered and paginated. An unknown `sector` code is an error (422),
    not an empty list, so a typo in a script does not pass for "no organizations"."""
    organizations = _organizations(request.auth)
    if filters.type:
        organizations = organizations.filter(type=filters.type)
    if filters.size:
        organizations = organizations.filter(size=filters.size)
    if filters.sector:
        sector = Sector.objects.restrict(request.auth, Action.VIEW).filter(code=filters.sector).first()
        if sector is None:
            raise validation_problem(
                [invalid_param("sector", _("Unknown sector code: %(codes)s") % {"codes": filters.sector})]
            )
        organizations = organizations.filter(sectors=sector)
    if filters.q:
        organizations = organizations.filter(
            Q(name_ja__icontains=filters.q) | Q(name_en__icontains=filters.q)
        )
    page = paginate(request, organizations, filters)
    page["items"] = [_organization(organization) for organization in page["items"]]
    return page


@router.get(
    "/organizations/{int:organization_id}",
    response={200: OrganizationDetailOut, **DETAIL_ERRORS},
    summary="One organization",
)
def organization_detail(request: HttpRequest, organization_id: int):
    """The organization, with its members and contact routes when it is in your reporting chain
    (otherwise `members` and `contact_routes` are null). A missing organization and one you may not
    see give the same 404."""
    user = request.auth
    organization = get_restricted_or_404(_organizations(user), user, Action.VIEW, pk=organization_id)
    data = _organization(organization) | {"members": None, "contact_routes": None}
    if Organization.objects.restrict(user, Action.VIEW_CONTACTS).filter(pk=organization.pk).exists():
        data["members"] = _members(user, organization)
        data["contact_routes"] = [
            {"kind": route.kind, "value": route.value, "label": route.label, "priority": route.priority}
            for route in ContactRoute.objects.restrict(user, Action.VIEW_CONTACTS).filter(
                organization=organization
            )
        ]
    return data


def _members(user, organization: Organization) -> list[dict]:
    members: dict[int, dict] = {}
    memberships = (
        Membership.objects.restrict(user, Action.VIEW_CONTACTS)
        .filter(organization=organization, user__is_active=True)
        .select_related("user")
        .order_by("user__username", "role")
    )
    for membership in memberships:
        person = membership.user
        members.setdefault(
            person.pk,
            {"id": person.pk, "username": person.username, "display_name": person.display_name, "roles": []},
        )["roles"].append(membership.role)
    return list(members.values())


def _people(user):
    return (
        User.objects.restrict(user, Action.VIEW)
        .filter(is_active=True)
        .prefetch_related(
            Prefetch(
                "memberships",
                queryset=Membership.objects.restrict(user, Action.VIEW)
                .select_related("organization")
                .order_by("organization__type", "organization__name_ja", "role"),
            )
        )
    )


@router.get("/people", response={200: PersonPageOut, **LIST_ERRORS}, summary="People")
def person_list(request: HttpRequest, filters: Query[PersonQuery]):
    """People you may see: yourself and the members of the organizations in your reporting chain."""
    people = _people(request.auth)
    if filters.organization is not None:
        people = people.filter(
            # Restricted too: otherwise the filter would tell who belongs to organizations outside the chain.
            pk__in=Membership.objects.restrict(request.auth)
            .filter(organization_id=filters.organization)
            .values("user_id")
        )
    if filters.q:
        people = people.filter(Q(username__icontains=filters.q) | Q(display_name__icontains=filters.q))
    page = paginate(request, people, filters)
    page["items"] = [_person(person) for person in page["items"]]
    return page


@router.get("/people/{int:person_id}", response={200: PersonOut, **DETAIL_ERRORS}, summary="One person")
def person_detail(request: HttpRequest, person_id: int):
    """A person you may see. Someone outside your reporting chain gives the same 404 as no one."""
    return _person(get_restricted_or_404(_people(request.auth), request.auth, Action.VIEW, pk=person_id))


def _person(person: User) -> dict:
    organizations: dict[int, dict] = {}
    for membership in person.memberships.all():
        organizations.setdefault(
            membership.organization_id,
            {"organization": _organization_ref(membership.organization), "roles": []},
        )["roles"].append(membership.role)
    return {
        "id": person.pk,
        "username": person.username,
        "display_name": person.display_name,
        "organizations": list(organizations.values()),
    }
