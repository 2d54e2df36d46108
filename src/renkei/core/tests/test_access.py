"""The access function, checked against an independent statement of the rules.

Hypothesis builds random communities (sectors, ministries, CEPTOARs, operators, people with random
roles, inactive organizations); for every user the database filter must return exactly what the
plain-Python oracle below allows — nothing more, nothing less.
"""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from renkei.core.access import get_restricted_or_404, principal_for, restrict
from renkei.core.choices import Action
from renkei.directory.choices import COMMUNITY_TYPES, OrganizationType, Role
from renkei.directory.models import ContactRoute, Membership, Organization, Sector, User

ORG_TYPES = [
    OrganizationType.NATIONAL_CENTER,
    OrganizationType.SECTOR_MINISTRY,
    OrganizationType.CEPTOAR,
    OrganizationType.OPERATOR,
    OrganizationType.OPERATOR,
    OrganizationType.RELATED_AGENCY,
    OrganizationType.VENDOR,
]

communities = st.fixed_dictionaries(
    {
        "sector_count": st.integers(min_value=1, max_value=3),
        "organizations": st.lists(
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(ORG_TYPES),
                    "sectors": st.sets(st.integers(min_value=0, max_value=2), max_size=2),
                    "parent": st.none() | st.integers(min_value=0, max_value=7),
                    "active": st.sampled_from([True, True, True, False]),
                }
            ),
            min_size=1,
            max_size=8,
        ),
        "people": st.lists(
            st.fixed_dictionaries(
                {
                    "memberships": st.sets(
                        st.tuples(st.integers(min_value=0, max_value=7), st.sampled_from(Role.values)),
                        max_size=3,
                    ),
                    "superuser": st.sampled_from([False, False, False, True]),
                }
            ),
            min_size=1,
            max_size=5,
        ),
    }
)


def build(spec):
    sectors = [Sector.objects.create(code=f"s{i}", name_ja=f"分野{i}") for i in range(spec["sector_count"])]
    orgs = []
    for index, item in enumerate(spec["organizations"]):
        org = Organization.objects.create(type=item["type"], name_ja=f"組織{index}", active=item["active"])
        org.sectors.set([sectors[s] for s in item["sectors"] if s < len(sectors)])
        orgs.append(org)
    for org, item in zip(orgs, spec["organizations"], strict=True):
        parent = item["parent"]
        if parent is not None and parent < len(orgs) and orgs[parent] != org:
            org.parent = orgs[parent]
            org.save()
    for org in orgs:
        if org.type == OrganizationType.SECTOR_MINISTRY:
            for sector in org.sectors.all():
                sector.ministries.add(org)
        ContactRoute.objects.create(organization=org, kind="email", value=f"{org.pk}@example.jp")
    users = []
    for index, person in enumerate(spec["people"]):
        user = User.objects.create(username=f"u{index}", is_superuser=person["superuser"])
        for org_index, role in person["memberships"]:
            if org_index < len(orgs):
                Membership.objects.create(user=user, organization=orgs[org_index], role=role)
        users.append(user)
    return orgs, users


# --- The oracle: the rules as a person would state them, evaluated in Python -------------------


def oracle_memberships(user):
    return [
        m
        for m in Membership.objects.filter(user=user).select_related("organization")
        if m.organization.active
    ]


def oracle_contacts(user, orgs):
    memberships = oracle_memberships(user)
    mine = {m.organization for m in memberships}
    if user.is_superuser or any(o.type == OrganizationType.NATIONAL_CENTER for o in mine):
        return set(orgs)
    my_sectors = {s for o in mine for s in o.sectors.all()}
    overseen = {s for s in Sector.objects.all() if set(s.ministries.all()) & mine}
    visible = set()
    for org in orgs:
        if (
            org in mine
            or any(o.parent_id == org.pk for o in mine)
            or (org.parent is not None and org.parent in mine)
            or org.type == OrganizationType.NATIONAL_CENTER
            or any(org in s.ministries.all() for s in my_sectors)
            or set(org.sectors.all()) & overseen
        ):
            visible.add(org)
    return visible


def oracle_view(user, orgs):
    mine = {m.organization for m in oracle_memberships(user)}
    if user.is_superuser or any(o.type in COMMUNITY_TYPES for o in mine):
        return set(orgs)
    return {o for o in orgs if o in mine or o.type == OrganizationType.NATIONAL_CENTER}


def is_directory_administrator(user):
    return user.is_superuser or any(
        m.organization.type == OrganizationType.NATIONAL_CENTER
        and m.role in (Role.COORDINATOR, Role.ORG_ADMIN)
        for m in oracle_memberships(user)
    )


def oracle_user_change(user):
    """Oneself; for a directory administrator, everyone with a role; for an org admin, the people
    whose every role is in organizations it administers."""
    everyone = {m.user for m in Membership.objects.all()}
    if is_directory_administrator(user):
        return {user} | everyone
    administered = {m.organization for m in oracle_memberships(user) if m.role == Role.ORG_ADMIN}
    managed = {
        person
        for person in everyone
        if all(m.organization in administered for m in Membership.objects.filter(user=person))
    }
    return {user} | managed


def oracle_change(user, orgs):
    if is_directory_administrator(user):
        return set(orgs)
    return {m.organization for m in oracle_memberships(user) if m.role == Role.ORG_ADMIN}


class AccessRulesMatchTheOracle(TestCase):
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(communities)
    def test_every_user_sees_exactly_what_the_rules_allow(self, spec):
        orgs, users = build(spec)
        for user in users:
            user = User.objects.get(pk=user.pk)
            contacts = oracle_contacts(user, orgs)
            assert set(Organization.objects.restrict(user, Action.VIEW)) == oracle_view(user, orgs)
            assert set(Organization.objects.restrict(user, Action.VIEW_CONTACTS)) == contacts
            assert set(Organization.objects.restrict(user, Action.CHANGE)) == oracle_change(user, orgs)
            assert {r.organization for r in ContactRoute.objects.restrict(user)} == contacts
            assert set(Membership.objects.restrict(user)) == {
                m for m in Membership.objects.all() if m.organization in contacts
            }
            assert set(User.objects.restrict(user)) == {user} | {
                m.user for m in Membership.objects.all() if m.organization in contacts
            }
            assert set(User.objects.restrict(user, Action.CHANGE)) == oracle_user_change(user)
            # Restricted querysets are plain filters: no row appears twice.
            assert Organization.objects.restrict(user, Action.VIEW_CONTACTS).count() == len(contacts)


@pytest.mark.django_db
def test_anonymous_users_see_nothing(community):
    anonymous = AnonymousUser()
    for model in (Sector, Organization, Membership, ContactRoute, User):
        assert not restrict(model.objects.all(), anonymous).exists()


@pytest.mark.django_db
def test_inactive_user_sees_nothing(community):
    user = community.nisc_coordinator
    user.is_active = False
    user.save()
    assert not Organization.objects.restrict(user).exists()


@pytest.mark.django_db
def test_forbidden_and_missing_raise_the_same_404(community):
    hospital_reporter = community.hospital_reporter
    queryset = ContactRoute.objects.all()
    forbidden = ContactRoute.objects.filter(organization=community.bank_a).first()
    with pytest.raises(Http404) as forbidden_error:
        get_restricted_or_404(queryset, hospital_reporter, pk=forbidden.pk)
    with pytest.raises(Http404) as missing_error:
        get_restricted_or_404(queryset, hospital_reporter, pk=10**9)
    assert str(forbidden_error.value) == str(missing_error.value)
    # A malformed id is "missing" too, never a 500.
    with pytest.raises(Http404):
        get_restricted_or_404(queryset, hospital_reporter, pk="not-a-number")


@pytest.mark.django_db
def test_chain_of_a_bank(community):
    """The worked example: a bank sees its own people, its CEPTOAR, the FSA and the national centre;
    not the other bank, nor the hospital, nor MHLW."""
    visible = set(Organization.objects.restrict(community.bank_a_reporter, Action.VIEW_CONTACTS))
    assert {community.bank_a, community.bank_ceptoar, community.fsa, community.nisc} <= visible
    assert community.bank_b not in visible
    assert community.hospital not in visible
    assert community.mhlw not in visible
    # The FSA oversees finance: it sees both banks, not the hospital.
    fsa_view = set(Organization.objects.restrict(community.fsa_coordinator, Action.VIEW_CONTACTS))
    assert {community.bank_a, community.bank_b} <= fsa_view
    assert community.hospital not in fsa_view


@pytest.mark.django_db
def test_principal_is_computed_once_per_user_object(community, django_assert_num_queries):
    user = User.objects.get(pk=community.bank_a_reporter.pk)
    principal_for(user)
    with django_assert_num_queries(0):
        principal_for(user)
