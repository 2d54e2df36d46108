"""Collections and their STIX objects: what every user may read and write, through `restrict`, the
TAXII server and the web pages, equals the rules stated in plain Python, on random communities
(built by the sharing tests' access_oracle)."""

import base64

from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from renkei.core.access import restrict
from renkei.core.choices import Action
from renkei.core.services import token_create
from renkei.directory.choices import OrganizationType, Role
from renkei.directory.models import User
from renkei.interop.models import WRITING_ROLES, Collection, CollectionAudience, StixObject
from renkei.interop.services import ingest
from renkei.interop.taxii import TAXII_MEDIA_TYPE
from renkei.interop.tests.stix_objects import indicator
from renkei.sharing.choices import Tlp
from renkei.sharing.tests.access_oracle import (
    MAX_ORGS,
    MAX_PEOPLE,
    Audience,
    Community,
    Viewer,
    addressed,
    build_community,
    scenarios,
    signed_in,
    viewer,
)

COLLECTION = {
    "owner": st.integers(min_value=0, max_value=MAX_ORGS - 1),
    "tlp": st.sampled_from(Tlp.values),
    "audience": st.sampled_from(CollectionAudience.values),
    "share_with_ceptoar": st.booleans(),
    "all_ci": st.booleans(),
    "sectors": st.sets(st.integers(min_value=0, max_value=1), max_size=2),
    "organization_types": st.sets(st.sampled_from(OrganizationType.values), max_size=1),
    "organizations": st.sets(st.integers(min_value=0, max_value=MAX_ORGS - 1), max_size=2),
    "people": st.sets(st.integers(min_value=0, max_value=MAX_PEOPLE - 1), max_size=2),
}


def may_read(who: Viewer, collection: Collection, named: Audience, community: Community) -> bool:
    """The rules: a collection is shared like a report of its owner (the chain) or with its named
    audience; TLP:RED reaches the owner's officers and named people only."""
    if collection.tlp == Tlp.RED:
        return (collection.owner_id, Role.OFFICER) in who.roles or who.user.pk in named.people
    if collection.owner_id in who.orgs:
        return True
    if collection.audience == CollectionAudience.NAMED:
        return addressed(who, named)
    owner_sectors = community.org_sectors.get(collection.owner_id, set())
    oversees = any(who.orgs & community.ministries_of[sector] for sector in owner_sectors)
    ceptoar = collection.share_with_ceptoar and collection.owner.parent_id in who.orgs
    return OrganizationType.NATIONAL_CENTER in who.types or oversees or ceptoar


def may_write(who: Viewer, collection: Collection, named: Audience, community: Community) -> bool:
    writer = any((collection.owner_id, role) in who.roles for role in WRITING_ROLES)
    return writer and may_read(who, collection, named, community)


def _create_collections(spec, community: Community) -> dict[Collection, Audience]:
    created = {}
    for number, item in enumerate(spec["collections"]):
        owner = community.orgs[item["owner"] % len(community.orgs)]
        collection = Collection.objects.create(
            owner=owner,
            title=f"collection {number}",
            tlp=item["tlp"],
            audience=item["audience"],
            share_with_ceptoar=item["share_with_ceptoar"],
        )
        people = {community.people[i].pk for i in item["people"] if i < len(community.people)}
        orgs = {community.orgs[i].pk for i in item["organizations"] if i < len(community.orgs)}
        sectors = {community.sectors[i].pk for i in item["sectors"] if i < len(community.sectors)}
        entries = [{"user_id": pk} for pk in people]
        if item["audience"] == CollectionAudience.NAMED:
            entries += [{"organization_id": pk} for pk in orgs] + [{"sector_id": pk} for pk in sectors]
            entries += [{"organization_type": kind} for kind in item["organization_types"]]
            entries += [{"all_ci": True}] if item["all_ci"] else []
        for entry in entries:
            collection.audience_entries.create(**entry)
        named = Audience(
            tlp=item["tlp"],
            all_ci=item["audience"] == CollectionAudience.NAMED and item["all_ci"],
            sectors=sectors if item["audience"] == CollectionAudience.NAMED else set(),
            organization_types=set(item["organization_types"])
            if item["audience"] == CollectionAudience.NAMED
            else set(),
            organizations=orgs if item["audience"] == CollectionAudience.NAMED else set(),
            people=people,
        )
        ingest(collection, [indicator(number)], user=None)
        created[collection] = named
    return created


def _taxii_collection_ids(user: User) -> set[str]:
    _token, secret = token_create(actor=user, user=user)
    basic = base64.b64encode(f"{user.username}:{secret}".encode()).decode()
    answer = Client().get(
        "/taxii2/api/collections/", headers={"Authorization": f"Basic {basic}", "Accept": TAXII_MEDIA_TYPE}
    )
    assert answer.status_code == 200
    return {item["id"] for item in answer.json().get("collections", [])}


class CollectionAccessMatchesTheRules(TestCase):
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(scenarios(collections=st.lists(st.fixed_dictionaries(COLLECTION), min_size=1, max_size=4)))
    def test_every_user_reads_and_writes_exactly_what_the_rules_allow(self, spec):
        community = build_community(spec)
        collections = _create_collections(spec, community)
        for user in community.people:
            who = viewer(user, community)
            readable = {c.pk for c, named in collections.items() if may_read(who, c, named, community)}
            writable = {c.pk for c, named in collections.items() if may_write(who, c, named, community)}
            candidates = Collection.objects.filter(pk__in=[c.pk for c in collections])
            assert set(restrict(candidates, user).values_list("pk", flat=True)) == readable
            assert set(restrict(candidates, user, Action.CHANGE).values_list("pk", flat=True)) == writable
            objects = StixObject.objects.filter(collection__in=collections)
            assert set(restrict(objects, user).values_list("collection_id", flat=True)) == readable
            listed = _taxii_collection_ids(user) & {str(c.pk) for c in collections}
            assert listed == {str(pk) for pk in readable}
            client = signed_in(user)
            for collection in collections:
                page = client.get(f"/exchange/collections/{collection.pk}/")
                assert page.status_code == (200 if collection.pk in readable else 404)
