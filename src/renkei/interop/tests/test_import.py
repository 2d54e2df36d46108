"""STIX bundle import through the API and the web interface, and who may see what was imported."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from renkei.audit.models import AuditRecord
from renkei.correlation.choices import SourceKind
from renkei.correlation.services import seen_elsewhere
from renkei.directory.choices import Role
from renkei.directory.models import User
from renkei.directory.services import organization_create, organization_remove
from renkei.directory.tests.factories import member
from renkei.interop import services
from renkei.interop.models import Collection, IngestStatus, StixObject
from renkei.interop.services import index_stored_objects, ingest, submissions_collection
from renkei.interop.tests.conftest import RunAtOnce
from renkei.interop.tests.stix_objects import bundle, indicator
from renkei.sharing.tests.access_oracle import signed_in
from renkei.sharing.tests.factories import bearer

STIX = "application/stix+json;version=2.1"
STIX_UPLOAD = {"format": "stix"}


def _post_bundle(client, user, body, *, collection: Collection | None = None, content_type: str = STIX):
    url = "/api/v1/stix/bundles" + (f"?collection={collection.pk}" if collection else "")
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post(url, data=data, content_type=content_type, headers=bearer(user))


@pytest.mark.django_db
def test_every_organization_has_a_submissions_collection(community):
    for organization in (community.bank_a, community.hospital, community.nisc, community.fsa):
        assert Collection.objects.filter(owner=organization, is_submissions=True).count() == 1


@pytest.mark.django_db
def test_api_import_stores_objects_in_the_callers_own_collection(client, community):
    answer = _post_bundle(client, community.bank_a_reporter, bundle(indicator(1), indicator(2)))
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert (body["total_count"], body["success_count"], body["failure_count"]) == (2, 2, 0)
    own = submissions_collection(community.bank_a)
    assert body["collection"] == str(own.pk)
    stored = StixObject.objects.get(stix_id=indicator(1)["id"])
    assert json.loads(stored.body) == indicator(1)
    assert stored.collection == own
    kept = IngestStatus.objects.get(pk=body["id"])
    assert kept.requested_by == community.bank_a_reporter
    assert (kept.successes, kept.failures) == (
        [{"id": indicator(number)["id"], "version": "2026-11-01T00:00:00.000Z"} for number in (1, 2)],
        [],
    )
    assert AuditRecord.objects.filter(object_type="interop.ingeststatus", object_id=body["id"]).exists()

    again = _post_bundle(client, community.bank_a_reporter, bundle(indicator(1), indicator(2)))
    assert again.json()["success_count"] == 2
    assert StixObject.objects.count() == 2  # nothing stored twice

    status = client.get(f"/api/v1/stix/statuses/{body['id']}", headers=bearer(community.bank_a_reporter))
    assert status.json()["success_count"] == 2
    hidden = client.get(f"/api/v1/stix/statuses/{body['id']}", headers=bearer(community.fsa_coordinator))
    assert hidden.status_code == 404


@pytest.mark.django_db
def test_custom_properties_and_fractional_seconds_are_kept(client, community):
    precise = indicator(
        1, modified="2026-11-01T00:00:00.123456Z", x_renkei_note="kept", created="2026-11-01T00:00:00.1Z"
    )
    answer = _post_bundle(client, community.bank_a_reporter, bundle(precise))
    assert answer.json()["success_count"] == 1
    stored = json.loads(StixObject.objects.get().body)
    assert stored["x_renkei_note"] == "kept"
    assert stored["modified"] == "2026-11-01T00:00:00.123456Z"


@pytest.mark.django_db
def test_an_organization_that_shared_objects_is_retired_not_deleted(community):
    def vendor(name):
        return organization_create(actor=None, name_ja=name, name_en=name, org_type="vendor")

    silent, sharing = vendor("Silent Co."), vendor("Sharing Co.")
    ingest(submissions_collection(sharing), [indicator(1)], user=None)
    assert organization_remove(actor=None, organization=silent) is True, "empty collections go with it"
    assert organization_remove(actor=None, organization=sharing) is False
    assert StixObject.objects.get().collection.owner == sharing


@pytest.mark.django_db
def test_objects_are_stored_with_every_value_json_allows(client, community):
    plain = indicator(1, name="不正通信の宛先")
    unusual = indicator(2, x_renkei_serial=2**70, x_renkei_note="\ud800 unpaired")
    answer = _post_bundle(client, community.bank_a_reporter, bundle(plain, unusual))
    assert answer.json()["success_count"] == 2
    stored = {row.stix_id: row.body for row in StixObject.objects.all()}
    assert json.loads(stored[plain["id"]]) == plain
    assert "不正通信の宛先" in stored[plain["id"]], "non-ASCII text is kept as it is"
    assert json.loads(stored[unusual["id"]]) == unusual


@pytest.mark.django_db
def test_invalid_objects_are_listed_and_valid_ones_stored(client, community):
    no_pattern = indicator(2)
    del no_pattern["pattern"]
    duplicate = indicator(1)
    answer = _post_bundle(
        client,
        community.bank_a_reporter,
        bundle(indicator(1), no_pattern, indicator(3, modified="not a time"), duplicate),
    )
    body = answer.json()
    assert answer.status_code == 201
    assert (body["success_count"], body["failure_count"]) == (1, 3)
    messages = {failure["id"]: failure["message"] for failure in body["failures"]}
    assert "pattern" in messages[no_pattern["id"]]
    assert "modified" in messages[indicator(3)["id"]]
    assert messages[indicator(1)["id"]] == "このバンドル内の先のオブジェクトと重複しています"  # ja by default
    assert list(StixObject.objects.values_list("stix_id", flat=True)) == [indicator(1)["id"]]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", 400),
        (b"[]", 400),
        (json.dumps({"type": "report", "objects": []}).encode(), 400),
        (json.dumps({"type": "bundle", "id": "bundle--x", "objects": {}}).encode(), 400),
        (("[" * 200 + "]" * 200).encode(), 400),
    ],
)
def test_an_unreadable_bundle_is_refused_and_writes_nothing(client, community, body, expected):
    answer = _post_bundle(client, community.bank_a_reporter, body)
    assert answer.status_code == expected
    assert answer["Content-Type"] == "application/problem+json"
    assert answer.json()["detail"]
    assert not StixObject.objects.exists()
    assert not IngestStatus.objects.exists()


@pytest.mark.django_db
def test_a_bundle_over_the_size_limit_is_refused(client, community, monkeypatch):
    monkeypatch.setattr(services, "MAX_BUNDLE_BYTES", 1000)
    monkeypatch.setattr("renkei.interop.api.MAX_BUNDLE_BYTES", 1000)
    answer = _post_bundle(client, community.bank_a_reporter, bundle(*(indicator(n) for n in range(10))))
    assert answer.status_code == 413
    assert not StixObject.objects.exists()


@pytest.mark.django_db
def test_writing_needs_a_collection_you_may_write(client, community):
    fsa_view = _post_bundle(
        client,
        community.fsa_coordinator,
        bundle(indicator(1)),
        collection=submissions_collection(community.bank_a),
    )
    assert fsa_view.status_code == 403
    hidden = _post_bundle(
        client,
        community.bank_b_reporter,
        bundle(indicator(1)),
        collection=submissions_collection(community.bank_a),
    )
    assert hidden.status_code == 404
    assert not StixObject.objects.exists()


@pytest.mark.django_db
def test_collection_list_api_shows_what_you_may_read(client, community):
    answer = client.get("/api/v1/stix/collections", headers=bearer(community.fsa_coordinator))
    owners = {item["owner"]: item["can_write"] for item in answer.json()}
    assert owners[community.bank_a.name] is False
    assert owners[community.fsa.name] is True
    assert community.hospital.name not in owners


@pytest.mark.django_db
def test_web_upload_and_pages_follow_the_access_function(client, community):
    own = submissions_collection(community.bank_a)
    client.force_login(community.bank_a_reporter)
    upload = SimpleUploadedFile("bundle.json", json.dumps(bundle(indicator(1))).encode(), "application/json")
    answer = client.post(reverse("interop:bundle_upload", args=[own.pk]), STIX_UPLOAD | {"bundle": upload})
    status = IngestStatus.objects.get()
    assert answer.status_code == 302
    assert answer["Location"] == reverse("interop:status_detail", args=[status.pk])
    assert "1" in client.get(answer["Location"]).content.decode()

    stored = StixObject.objects.get()
    listing = client.get(reverse("interop:collection_detail", args=[own.pk]))
    assert "C2 server 1" in listing.content.decode()
    assert client.get(reverse("interop:object_detail", args=[stored.pk])).status_code == 200

    for outsider in (community.bank_b_reporter, community.hospital_reporter):
        client.force_login(outsider)
        assert client.get(reverse("interop:collection_detail", args=[own.pk])).status_code == 404
        assert client.get(reverse("interop:object_detail", args=[stored.pk])).status_code == 404
        assert client.get(reverse("interop:status_detail", args=[status.pk])).status_code == 404
    ministry = signed_in(community.fsa_coordinator)
    assert ministry.get(reverse("interop:object_detail", args=[stored.pk])).status_code == 200


@pytest.mark.django_db
def test_web_upload_shows_why_a_bundle_was_refused(client, community):
    own = submissions_collection(community.bank_a)
    client.force_login(community.bank_a_reporter)
    upload = SimpleUploadedFile("bundle.json", b"{not json", "application/json")
    answer = client.post(reverse("interop:bundle_upload", args=[own.pk]), STIX_UPLOAD | {"bundle": upload})
    assert answer.status_code == 400
    assert "errorlist" in answer.content.decode()
    assert not IngestStatus.objects.exists()


@pytest.mark.django_db
def test_each_write_leaves_exactly_the_newest_version_of_each_id_current(community, monkeypatch):
    monkeypatch.setattr(services, "IDS_PER_STATEMENT", 2)  # several statements per write, as with large ones
    own = submissions_collection(community.bank_a)

    def current() -> list[tuple[str, str]]:
        rows = StixObject.objects.filter(collection=own, is_latest=True).values_list("stix_id", "body")
        return sorted((stix_id, json.loads(body)["modified"]) for stix_id, body in rows)

    day = "2026-11-0{}T00:00:00.000Z".format
    ingest(own, [indicator(n, modified=day(2)) for n in range(1, 4)], user=community.bank_a_reporter)
    # Newer versions of 1 and 2 (2 twice, the newest last), an older one of 3, a repeat of 3 and a new 4.
    written = [indicator(1, modified=day(3)), indicator(2, modified=day(5)), indicator(2, modified=day(4))]
    written += [indicator(3, modified=day(1)), indicator(3, modified=day(2)), indicator(4, modified=day(1))]
    status = ingest(own, written, user=community.bank_a_reporter)

    assert status.success_count == 6
    assert StixObject.objects.filter(collection=own).count() == 8  # the repeat is not stored again
    ids = [indicator(n)["id"] for n in range(1, 5)]
    assert current() == sorted(zip(ids, [day(3), day(5), day(2), day(1)], strict=True))


@pytest.mark.django_db
def test_red_collections_reach_only_officers_and_named_people(community):
    red = Collection.objects.create(owner=community.bank_a, title="Red", tlp="RED")
    officer = member(community.bank_a, Role.OFFICER, "bank_a_red_officer")
    ingest(red, [indicator(1)], user=officer)
    assert StixObject.objects.restrict(officer).count() == 1
    for outsider in (community.bank_a_reporter, community.fsa_coordinator, community.nisc_coordinator):
        assert StixObject.objects.restrict(outsider).filter(collection=red).count() == 0
    red.audience_entries.create(user=community.nisc_coordinator)
    assert StixObject.objects.restrict(community.nisc_coordinator).filter(collection=red).count() == 1


@pytest.mark.django_db
def test_a_ceptoar_reads_a_members_collection_only_when_chosen(community):
    own = submissions_collection(community.bank_a)
    ingest(own, [indicator(1)], user=community.bank_a_reporter)
    assert not StixObject.objects.restrict(community.ceptoar_officer).exists()
    own.share_with_ceptoar = True
    own.save()
    assert StixObject.objects.restrict(community.ceptoar_officer).count() == 1
    other_member = submissions_collection(community.bank_b)
    other_member.share_with_ceptoar = True
    other_member.save()
    assert not StixObject.objects.restrict(community.bank_a_reporter).filter(collection=other_member).exists()


@pytest.mark.django_db
def test_the_demo_imports_sample_objects_once_and_they_correlate_with_the_demo_report(monkeypatch):
    monkeypatch.setattr(services, "stix_sightings_index", RunAtOnce(index_stored_objects))
    call_command("demo", verbosity=0)
    stored = StixObject.objects.count()
    assert stored == 6
    call_command("demo", verbosity=0)
    assert StixObject.objects.count() == stored
    assert IngestStatus.objects.count() == 1
    reporter = User.objects.get(username="finance-op1-reporter")
    exact = StixObject.objects.get(stix_id="indicator--c1b0d3a2-6f4e-4b8a-9a51-0e7d2f3c4b01")
    in_range = StixObject.objects.get(stix_id="indicator--c1b0d3a2-6f4e-4b8a-9a51-0e7d2f3c4b02")
    for found in (exact, in_range):
        seen = seen_elsewhere(SourceKind.STIX, found.pk, reporter)
        assert [link.kind for item in seen.observables for link in item.links] == [SourceKind.REPORT]


@pytest.mark.django_db
def test_a_bundle_sent_as_another_media_type_is_refused(client, community):
    answer = _post_bundle(client, community.bank_a_reporter, bundle(indicator(1)), content_type="text/plain")
    assert answer.status_code == 415
    assert answer["Content-Type"] == "application/problem+json"
    assert answer.json()["detail"]
    assert not StixObject.objects.exists()
