"""Collections an organization shares objects through: created and changed by its officers and
administrators on the web and over the API, with the label as the ceiling on the audience."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from renkei.audit.models import AuditAction, AuditRecord
from renkei.core.access import restrict
from renkei.core.choices import Action
from renkei.directory.choices import OrganizationType, Role
from renkei.directory.models import Sector
from renkei.directory.tests.factories import member
from renkei.interop.models import Collection, CollectionAudience, StixObject
from renkei.interop.services import (
    CollectionSettings,
    collection_create,
    collection_update,
    ingest,
    submissions_collection,
)
from renkei.interop.tests.stix_objects import indicator
from renkei.sharing.choices import Tlp
from renkei.sharing.tests.factories import bearer
from renkei.sharing.tests.test_views import signed_in

GREEN_TO_ALL_CI = CollectionSettings(
    title="Indicators for all CI", tlp=Tlp.GREEN, audience=CollectionAudience.NAMED, all_ci=True
)


@pytest.fixture(autouse=True)
def _english(_default_language):
    """The services' refusals are asserted in English."""
    translation.activate("en")


@pytest.fixture
def nisc_officer(community):
    return member(community.nisc, Role.OFFICER, "nisc_officer")


def _readable(user, collection) -> bool:
    return restrict(Collection.objects.filter(pk=collection.pk), user).exists()


def _writable(user, collection) -> bool:
    return restrict(Collection.objects.filter(pk=collection.pk), user, Action.CHANGE).exists()


def test_the_national_centre_shares_a_green_collection_with_all_critical_infrastructure(
    community, nisc_officer
):
    shared = collection_create(actor=nisc_officer, owner=community.nisc, data=GREEN_TO_ALL_CI)
    ingest(shared, [indicator(1)], user=nisc_officer)

    for reader in (community.bank_a_reporter, community.hospital_reporter, community.fsa_coordinator):
        assert _readable(reader, shared)
        assert not _writable(reader, shared)
        assert StixObject.objects.restrict(reader).filter(collection=shared).count() == 1
    assert _writable(nisc_officer, shared)
    record = AuditRecord.objects.get(object_type="interop.collection", object_id=str(shared.pk))
    assert record.action == AuditAction.CREATE
    assert record.after["tlp"] == Tlp.GREEN
    assert record.after["audience_entries"]


def test_only_officers_and_administrators_create_collections(community):
    with pytest.raises(ValidationError, match="officers and administrators"):
        collection_create(actor=community.bank_a_reporter, owner=community.bank_a, data=GREEN_TO_ALL_CI)
    with pytest.raises(ValidationError, match="officers and administrators"):
        collection_create(actor=community.bank_a_admin, owner=community.bank_b, data=GREEN_TO_ALL_CI)
    assert not Collection.objects.filter(title=GREEN_TO_ALL_CI.title).exists()


@pytest.mark.parametrize(
    ("tlp", "audience", "field"),
    [
        (Tlp.RED, {"all_ci": True}, "tlp"),
        (Tlp.AMBER_STRICT, {"sectors": ["finance"]}, "tlp"),
        (Tlp.GREEN, {"organization_types": [OrganizationType.PUBLIC]}, "organization_types"),
    ],
)
def test_the_label_is_the_ceiling_on_the_audience(client, community, tlp, audience, field):
    answer = client.post(
        "/api/v1/stix/collections",
        {"title": "Too wide", "tlp": tlp, "audience": "named", "named_audience": audience},
        content_type="application/json",
        headers=bearer(community.bank_a_admin),
    )
    assert answer.status_code == 422
    assert field in {param["name"] for param in answer.json()["invalid_params"]}
    assert not Collection.objects.filter(title="Too wide").exists()


def test_a_changed_audience_applies_to_the_objects_already_in_it(community):
    private = collection_create(
        actor=community.bank_a_admin,
        owner=community.bank_a,
        data=CollectionSettings(title="Bank A partners", tlp=Tlp.AMBER),
    )
    ingest(private, [indicator(2)], user=community.bank_a_reporter)
    assert _readable(community.fsa_coordinator, private)
    assert not _readable(community.hospital_reporter, private)

    medical = Sector.objects.get(code="medical")
    collection_update(
        actor=community.bank_a_admin,
        collection=private,
        data=CollectionSettings(
            title="For hospitals", tlp=Tlp.GREEN, audience=CollectionAudience.NAMED, sectors=[medical]
        ),
    )
    assert StixObject.objects.restrict(community.hospital_reporter).filter(collection=private).count() == 1
    assert not _readable(community.fsa_coordinator, private)
    assert _readable(community.bank_a_reporter, private)  # the owner always reads its own
    change = AuditRecord.objects.get(object_id=str(private.pk), action=AuditAction.UPDATE)
    assert (change.before["tlp"], change.after["tlp"]) == (Tlp.AMBER, Tlp.GREEN)


def test_submissions_collections_keep_following_the_mandated_chain(client, community):
    own = submissions_collection(community.bank_a)
    with pytest.raises(ValidationError, match="mandated chain"):
        collection_update(actor=community.bank_a_admin, collection=own, data=GREEN_TO_ALL_CI)
    answer = client.put(
        f"/api/v1/stix/collections/{own.pk}",
        {"title": "Everyone", "tlp": "GREEN", "audience": "named", "named_audience": {"all_ci": True}},
        content_type="application/json",
        headers=bearer(community.bank_a_admin),
    )
    assert answer.status_code == 422
    own.refresh_from_db()
    assert (own.tlp, own.audience) == (Tlp.AMBER, CollectionAudience.CHAIN)


def test_the_api_creates_and_changes_a_collection(client, community, nisc_officer):
    created = client.post(
        "/api/v1/stix/collections",
        {
            "title": "Finance and medical",
            "tlp": "GREEN",
            "audience": "named",
            "named_audience": {"sectors": ["finance", "medical"]},
        },
        content_type="application/json",
        headers=bearer(nisc_officer),
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["tlp"], body["audience"], body["can_write"]) == ("GREEN", "named", True)
    assert sorted(body["named_audience"]["sectors"]) == ["finance", "medical"]

    listed = client.get("/api/v1/stix/collections", headers=bearer(community.hospital_reporter)).json()
    [seen] = [item for item in listed if item["id"] == body["id"]]
    assert seen["can_write"] is False

    changed = client.put(
        f"/api/v1/stix/collections/{body['id']}",
        {
            "title": "Finance only",
            "tlp": "AMBER",
            "audience": "named",
            "named_audience": {"sectors": ["finance"]},
        },
        content_type="application/json",
        headers=bearer(nisc_officer),
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["title"] == "Finance only"
    gone = client.get("/api/v1/stix/collections", headers=bearer(community.hospital_reporter)).json()
    assert body["id"] not in {item["id"] for item in gone}


def test_the_api_refuses_unknown_codes_and_callers_who_manage_nothing(client, community, nisc_officer):
    unknown = client.post(
        "/api/v1/stix/collections",
        {"title": "X", "tlp": "GREEN", "audience": "named", "named_audience": {"sectors": ["nowhere"]}},
        content_type="application/json",
        headers=bearer(nisc_officer),
    )
    assert unknown.status_code == 422
    assert unknown.json()["invalid_params"][0]["name"] == "named_audience.sectors"
    reporter = client.post(
        "/api/v1/stix/collections",
        {"title": "X"},
        content_type="application/json",
        headers=bearer(community.bank_a_reporter),
    )
    assert reporter.status_code == 403
    assert reporter["Content-Type"] == "application/problem+json"
    hidden = client.put(
        f"/api/v1/stix/collections/{submissions_collection(community.hospital).pk}",
        {"title": "X"},
        content_type="application/json",
        headers=bearer(community.bank_a_admin),
    )
    assert hidden.status_code == 404
    assert not Collection.objects.filter(title="X").exists()


def test_an_administrator_creates_and_edits_a_collection_on_the_web(community):
    browser = signed_in(community.bank_a_admin)
    form = browser.get("/exchange/collections/new/")
    assert form.status_code == 200
    finance = Sector.objects.get(code="finance")
    answer = browser.post(
        "/exchange/collections/new/",
        {"title": "Sector partners", "tlp": "GREEN", "audience": "named", "sectors": [finance.pk]},
    )
    shared = Collection.objects.get(title="Sector partners")
    assert answer.status_code == 302
    assert answer["Location"] == f"/exchange/collections/{shared.pk}/"
    assert shared.owner == community.bank_a
    assert f"/exchange/collections/{shared.pk}/edit/" in browser.get(answer["Location"]).content.decode()

    refused = browser.post(
        f"/exchange/collections/{shared.pk}/edit/",
        {"title": "Sector partners", "tlp": "RED", "audience": "named", "sectors": [finance.pk]},
    )
    assert refused.status_code == 200
    assert "never go to whole groups" in refused.content.decode()
    shared.refresh_from_db()
    assert shared.tlp == Tlp.GREEN

    own = submissions_collection(community.bank_a)
    assert browser.get(f"/exchange/collections/{own.pk}/edit/").status_code == 404
    reporter = signed_in(community.bank_a_reporter)
    assert reporter.get("/exchange/collections/new/").status_code == 404
    assert reporter.get(f"/exchange/collections/{shared.pk}/edit/").status_code == 404
