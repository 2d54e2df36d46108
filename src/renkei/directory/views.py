"""Directory pages: sectors, organizations, people, and editing by those allowed to.

Every read goes through `restrict(...)` / `get_restricted_or_404`, so an organization the user may
not edit answers its edit pages with the same 404 as one that does not exist.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, Q
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from renkei.core.access import get_restricted_or_404
from renkei.core.choices import Action
from renkei.directory.choices import OrganizationType, Role
from renkei.directory.forms import (
    ContactRouteFormSet,
    MemberAddForm,
    OrganizationFilterForm,
    OrganizationForm,
    PersonFilterForm,
)
from renkei.directory.models import ContactRoute, Membership, Organization, Sector, User
from renkei.directory.services import contact_routes_replace, membership_add, organization_update, user_create

PAGE_SIZE = 25
# A chain of parent bodies longer than this is a data error; stop rather than loop.
MAX_PARENT_DEPTH = 5


@dataclass(frozen=True)
class ChainStep:
    """One hop of an organization's reporting chain, e.g. its sector ministries."""

    label: str
    organizations: list[Organization]


def reporting_chain(organization: Organization, user) -> list[ChainStep]:
    """Where an organization's reports go: its parent bodies (an operator's CEPTOAR, the CEPTOAR
    Council), the ministries of its sectors, and the national centre."""
    visible = Organization.objects.restrict(user).filter(active=True)
    steps = []
    parents, seen, parent_id = [], {organization.pk}, organization.parent_id
    while parent_id is not None and parent_id not in seen and len(parents) < MAX_PARENT_DEPTH:
        seen.add(parent_id)
        parent = visible.filter(pk=parent_id).first()
        if parent is None:
            break
        parents.append(parent)
        parent_id = parent.parent_id
    if parents:
        steps.append(ChainStep(gettext_lazy("Information-sharing bodies"), parents))
    ministries = list(
        visible.filter(overseen_sectors__in=organization.sectors.restrict(user))
        .exclude(pk=organization.pk)
        .distinct()
    )
    if ministries:
        steps.append(ChainStep(gettext_lazy("Sector ministries"), ministries))
    if organization.type != OrganizationType.NATIONAL_CENTER:
        centre = list(visible.filter(type=OrganizationType.NATIONAL_CENTER))
        if centre:
            steps.append(ChainStep(gettext_lazy("National centre"), centre))
    return steps


def memberships_by_organization(memberships: Iterable[Membership]) -> list[tuple[Organization, list[str]]]:
    """Group memberships (with organization selected) as (organization, [role labels])."""
    grouped: dict[int, tuple[Organization, list[str]]] = {}
    for membership in memberships:
        entry = grouped.setdefault(membership.organization_id, (membership.organization, []))
        entry[1].append(membership.get_role_display())
    return list(grouped.values())


def _page(request, queryset, per_page: int = PAGE_SIZE):
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def _query_without_page(request) -> str:
    """The current filters as a query string, for pagination links that keep them."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


# --- Sectors --------------------------------------------------------------------------------------


@login_required
def sector_list(request):
    user = request.user
    visible = Organization.objects.restrict(user).filter(active=True)
    sectors = (
        Sector.objects.restrict(user)
        .filter(active=True)
        .annotate(
            operator_count=Count(
                "organizations",
                filter=Q(organizations__type=OrganizationType.OPERATOR, organizations__in=visible),
            )
        )
        .prefetch_related(
            Prefetch("ministries", queryset=visible, to_attr="visible_ministries"),
            Prefetch(
                "organizations", queryset=visible.filter(type=OrganizationType.CEPTOAR), to_attr="ceptoars"
            ),
        )
    )
    return render(request, "directory/sector_list.html", {"sectors": sectors})


@login_required
def sector_detail(request, code):
    user = request.user
    sector = get_restricted_or_404(Sector.objects, user, code=code)
    visible = Organization.objects.restrict(user).filter(active=True)
    in_sector = visible.filter(pk__in=sector.organizations.values("pk")).select_related("parent")
    context = {
        "sector": sector,
        "ministries": visible.filter(pk__in=sector.ministries.values("pk")),
        "ceptoars": in_sector.filter(type=OrganizationType.CEPTOAR),
        "operators": _page(request, in_sector.filter(type=OrganizationType.OPERATOR).order_by("name_ja")),
        "operator_count": in_sector.filter(type=OrganizationType.OPERATOR).count(),
    }
    return render(request, "directory/sector_detail.html", context)


# --- Organizations --------------------------------------------------------------------------------


@login_required
def organization_list(request):
    """Filterable list. htmx swaps only the results while the user types; without JavaScript the
    same form submits normally and the whole page comes back."""
    user = request.user
    form = OrganizationFilterForm(request.GET, user=user)
    organizations = form.apply(
        Organization.objects.restrict(user)
        .select_related("parent")
        .prefetch_related(Prefetch("sectors", queryset=Sector.objects.restrict(user)))
    )
    context = {
        "form": form,
        "page": _page(request, organizations),
        "query": _query_without_page(request),
    }
    partial = (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )
    template = (
        "directory/includes/organization_results.html" if partial else "directory/organization_list.html"
    )
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@login_required
def organization_detail(request, pk):
    user = request.user
    organization = get_restricted_or_404(Organization.objects.select_related("parent"), user, pk=pk)
    can_view_contacts = Organization.objects.restrict(user, Action.VIEW_CONTACTS).filter(pk=pk).exists()
    context = {
        "organization": organization,
        "sectors": organization.sectors.restrict(user),
        "chain": reporting_chain(organization, user),
        "children": _page(
            request,
            Organization.objects.restrict(user)
            .filter(parent=organization)
            .prefetch_related(Prefetch("sectors", queryset=Sector.objects.restrict(user))),
        ),
        "can_view_contacts": can_view_contacts,
        "can_change": Organization.objects.restrict(user, Action.CHANGE).filter(pk=pk).exists(),
    }
    if can_view_contacts:
        members = (
            Membership.objects.restrict(user, Action.VIEW_CONTACTS)
            .filter(organization=organization, user__is_active=True)
            .select_related("user")
            .order_by("user__username", "role")
        )
        context["members"] = _members_with_roles(members)
        context["contact_routes"] = list(
            ContactRoute.objects.restrict(user, Action.VIEW_CONTACTS).filter(organization=organization)
        )
    return render(request, "directory/organization_detail.html", context)


def _members_with_roles(memberships: Iterable[Membership]) -> list[tuple[User, list[str]]]:
    grouped: dict[int, tuple[User, list[str]]] = {}
    for membership in memberships:
        entry = grouped.setdefault(membership.user_id, (membership.user, []))
        entry[1].append(membership.get_role_display())
    return list(grouped.values())


@login_required
def organization_edit(request, pk):
    user = request.user
    organization = get_restricted_or_404(Organization.objects, user, Action.CHANGE, pk=pk)
    form = OrganizationForm(request.POST or None, organization=organization, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            organization_update(actor=user, organization=organization, **form.cleaned_data)
        except ValidationError as error:
            # The service set the new values on the instance before refusing them.
            organization.refresh_from_db()
            form.add_error(None, error)
        else:
            messages.success(request, _("The organization has been updated."))
            return redirect("directory:organization_detail", pk=organization.pk)
    return render(request, "directory/organization_form.html", {"organization": organization, "form": form})


@login_required
def contact_routes_edit(request, pk):
    user = request.user
    organization = get_restricted_or_404(Organization.objects, user, Action.CHANGE, pk=pk)
    current = [
        {"kind": route.kind, "value": route.value, "label": route.label}
        for route in ContactRoute.objects.restrict(user, Action.CHANGE).filter(organization=organization)
    ]
    formset = ContactRouteFormSet(request.POST or None, initial=current, prefix="routes")
    if request.method == "POST" and formset.is_valid():
        try:
            contact_routes_replace(actor=user, organization=organization, contacts=formset.contacts())
        except ValidationError as error:
            formset.non_form_errors().extend(error.messages)
        else:
            messages.success(request, _("The contact routes have been saved."))
            return redirect("directory:organization_detail", pk=organization.pk)
    return render(
        request, "directory/contact_routes_form.html", {"organization": organization, "formset": formset}
    )


@login_required
def member_add(request, pk):
    user = request.user
    organization = get_restricted_or_404(Organization.objects, user, Action.CHANGE, pk=pk)
    form = MemberAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        # Only people the actor already administers can be given a role by username; anyone else
        # gets a new account (or "taken"), so this form cannot be used to pull in strangers.
        existing = (
            User.objects.restrict(user, Action.CHANGE).filter(username__iexact=data["username"]).first()
        )
        try:
            if existing is not None:
                membership_add(actor=user, user=existing, organization=organization, role=data["role"])
            else:
                user_create(
                    actor=user,
                    username=data["username"],
                    organization=organization,
                    role=data["role"],
                    email=data["email"],
                    display_name=data["display_name"],
                )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(
                request,
                _("%(name)s now has the role %(role)s.")
                % {"name": data["username"], "role": Role(data["role"]).label},
            )
            return redirect("directory:organization_detail", pk=organization.pk)
    return render(request, "directory/member_form.html", {"organization": organization, "form": form})


# --- People ---------------------------------------------------------------------------------------


@login_required
def person_list(request):
    user = request.user
    form = PersonFilterForm(request.GET)
    people = form.apply(
        User.objects.restrict(user)
        .filter(is_active=True)
        .prefetch_related(
            Prefetch(
                "memberships",
                queryset=Membership.objects.restrict(user).select_related("organization"),
                to_attr="visible_memberships",
            )
        )
    )
    context = {"form": form, "page": _page(request, people), "query": _query_without_page(request)}
    return render(request, "directory/person_list.html", context)


@login_required
def person_detail(request, pk):
    user = request.user
    person = get_restricted_or_404(User.objects, user, pk=pk)
    memberships = Membership.objects.restrict(user).filter(user=person).select_related("organization")
    context = {
        "person": person,
        # People are visible only through the viewer's chain, so their address is visible with them.
        "positions": memberships_by_organization(memberships),
    }
    return render(request, "directory/person_detail.html", context)
