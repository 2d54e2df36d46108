"""The TAXII 2.1 server, driven by the real `taxii2-client` over HTTP against a live server."""

import json

import pytest
import requests
from taxii2client.exceptions import TAXIIServiceException
from taxii2client.v21 import Collection as TaxiiCollection
from taxii2client.v21 import Server, as_pages

from renkei.interop.models import Collection, StixObject
from renkei.interop.services import ingest, submissions_collection
from renkei.interop.taxii import TAXII_MEDIA_TYPE
from renkei.interop.tests.stix_objects import indicator
from renkei.interop.view_collections import ADVISORIES, ANONYMIZED_REPORTS, REPORTS
from renkei.sharing import services as sharing_services
from renkei.sharing.tests.factories import advisory_for, anonymized_copy_for, report_for, report_input

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def taxii(live_server, token_of):
    """A taxii2-client Server for a user, signed in with HTTP Basic (user name and API token)."""

    def connect(user) -> Server:
        return Server(f"{live_server.url}/taxii2/", user=user.username, password=token_of(user))

    return connect


def _collection(server: Server, collection: Collection) -> TaxiiCollection:
    api_root = server.api_roots[0]
    return next(item for item in api_root.collections if item.id == str(collection.pk))


def _envelope(*objects) -> str:
    return json.dumps({"objects": list(objects)})


def test_discovery_and_api_root(taxii, community):
    server = taxii(community.bank_a_reporter)
    assert server.title
    api_root = server.api_roots[0]
    assert server.default.url == api_root.url
    assert TAXII_MEDIA_TYPE in api_root.versions
    assert api_root.max_content_length > 0


def test_collections_follow_the_mandated_chain(taxii, community):
    """An operator's submissions reach its sector ministry and the national centre, read-only, and
    no other operator."""
    own = submissions_collection(community.bank_a)
    mine = _collection(taxii(community.bank_a_reporter), own)
    assert mine.can_read and mine.can_write
    for reader in (community.fsa_coordinator, community.nisc_coordinator):
        seen = _collection(taxii(reader), own)
        assert seen.can_read and not seen.can_write
    for outsider in (community.bank_b_reporter, community.mhlw_coordinator, community.hospital_reporter):
        ids = {item.id for item in taxii(outsider).api_roots[0].collections}
        assert str(own.pk) not in ids


def test_add_objects_then_page_through_and_poll_with_added_after(taxii, token_of, community):
    own = submissions_collection(community.bank_a)
    writer = _collection(taxii(community.bank_a_reporter), own)
    status = writer.add_objects(_envelope(*(indicator(number) for number in range(25))))
    assert status.status == "complete"
    assert (status.total_count, status.success_count, status.failure_count) == (25, 25, 0)

    reader = _collection(taxii(community.fsa_coordinator), own)
    pages = list(as_pages(reader.get_objects, per_request=10))
    assert [len(page["objects"]) for page in pages] == [10, 10, 5]
    received = [obj["id"] for page in pages for obj in page["objects"]]
    assert received == [indicator(number)["id"] for number in range(25)]

    # A poller remembers X-TAXII-Date-Added-Last and asks only for what came after it.
    secret = token_of(community.fsa_coordinator)
    first_poll = _get(community.fsa_coordinator, secret, reader.url + "objects/")
    assert first_poll.headers["Content-Type"] == TAXII_MEDIA_TYPE
    last_added = first_poll.headers["X-TAXII-Date-Added-Last"]
    writer.add_objects(_envelope(indicator(100), indicator(101)))
    second_poll = _get(community.fsa_coordinator, secret, reader.url + "objects/", added_after=last_added)
    assert [obj["id"] for obj in second_poll.json()["objects"]] == [
        indicator(100)["id"],
        indicator(101)["id"],
    ]
    caught_up = reader.get_objects(added_after=second_poll.headers["X-TAXII-Date-Added-Last"])
    assert caught_up == {"more": False}


def _get(user, secret: str, url: str, accept: str = TAXII_MEDIA_TYPE, **params) -> requests.Response:
    return requests.get(
        url, params=params, auth=(user.username, secret), headers={"Accept": accept}, timeout=10
    )


def test_a_newer_version_supersedes_and_the_older_stays_as_history(taxii, community):
    own = submissions_collection(community.bank_a)
    writer = _collection(taxii(community.bank_a_reporter), own)
    first = indicator(1)
    newer = indicator(1, modified="2026-11-02T00:00:00.000Z", name="C2 server 1 (confirmed)")
    writer.add_objects(_envelope(newer))
    status = writer.add_objects(_envelope(first, newer))  # the older version after the newer, and a repeat
    assert status.success_count == 2

    assert StixObject.objects.filter(stix_id=first["id"]).count() == 2  # the repeat stored nothing
    assert [obj["name"] for obj in writer.get_objects()["objects"]] == ["C2 server 1 (confirmed)"]
    assert writer.object_versions(first["id"])["versions"] == [
        "2026-11-01T00:00:00.000000Z",
        "2026-11-02T00:00:00.000000Z",
    ]
    older = writer.get_object(first["id"], version="2026-11-01T00:00:00.000Z")
    assert [obj["name"] for obj in older["objects"]] == ["C2 server 1"]
    everything = writer.get_objects(version="all")
    assert len(everything["objects"]) == 2
    manifest = writer.get_manifest()
    assert [(item["id"], item["version"]) for item in manifest["objects"]] == [
        (first["id"], "2026-11-02T00:00:00.000000Z")
    ]


def test_filters_by_type_and_id(taxii, community):
    own = submissions_collection(community.bank_a)
    identity = {
        "type": "identity",
        "spec_version": "2.1",
        "id": "identity--311b2d2d-f010-4473-83ec-1edf84858f4c",
        "created": "2026-11-01T00:00:00.000Z",
        "modified": "2026-11-01T00:00:00.000Z",
        "name": "Sakura Bank SOC",
        "identity_class": "organization",
    }
    ingest(own, [indicator(1), indicator(2), identity], user=community.bank_a_reporter)
    reader = _collection(taxii(community.nisc_coordinator), own)
    assert [obj["id"] for obj in reader.get_objects(type="identity")["objects"]] == [identity["id"]]
    chosen = reader.get_objects(id=f"{indicator(2)['id']},{identity['id']}")
    assert {obj["id"] for obj in chosen["objects"]} == {indicator(2)["id"], identity["id"]}


def test_a_partly_valid_envelope_stores_the_valid_objects_and_lists_the_rest(taxii, community):
    own = submissions_collection(community.bank_a)
    writer = _collection(taxii(community.bank_a_reporter), own)
    broken = indicator(2, pattern="[ipv4-addr:value = '198.51.100.2'")
    status = writer.add_objects(_envelope(indicator(1), broken))
    assert (status.success_count, status.failure_count) == (1, 1)
    assert status.failures[0]["id"] == broken["id"]
    assert "pattern" in status.failures[0]["message"]
    assert list(StixObject.objects.values_list("stix_id", flat=True)) == [indicator(1)["id"]]
    # The status resource is kept for the writer.
    assert writer.url.split("/collections/")[0] in status.url


def test_deleting_an_object_is_for_writers(taxii, token_of, community):
    own = submissions_collection(community.bank_a)
    ingest(own, [indicator(1)], user=community.bank_a_reporter)
    reader = _collection(taxii(community.fsa_coordinator), own)
    refused = requests.delete(
        f"{reader.url}objects/{indicator(1)['id']}/",
        auth=(community.fsa_coordinator.username, token_of(community.fsa_coordinator)),
        headers={"Accept": TAXII_MEDIA_TYPE},
        timeout=10,
    )
    assert refused.status_code == 403
    assert StixObject.objects.exists()
    _collection(taxii(community.bank_a_reporter), own).delete_object(indicator(1)["id"])
    assert not StixObject.objects.exists()


def test_writing_is_refused_to_readers_and_an_unseen_collection_is_missing(live_server, token_of, community):
    own = submissions_collection(community.bank_a)
    ingest(own, [indicator(1)], user=community.bank_a_reporter)
    objects_url = f"{live_server.url}/taxii2/api/collections/{own.pk}/objects/"

    def answer(user, method: str, url: str) -> int:
        return requests.request(
            method,
            url,
            data=_envelope(indicator(2)) if method == "POST" else None,
            auth=(user.username, token_of(user)),
            headers={"Accept": TAXII_MEDIA_TYPE, "Content-Type": TAXII_MEDIA_TYPE},
            timeout=10,
        ).status_code

    one_url = f"{objects_url}{indicator(1)['id']}/"
    reader, stranger = community.fsa_coordinator, community.bank_b_reporter
    assert [answer(reader, "POST", objects_url), answer(reader, "DELETE", one_url)] == [403, 403]
    assert [answer(stranger, "POST", objects_url), answer(stranger, "DELETE", one_url)] == [404, 404]
    assert list(StixObject.objects.values_list("stix_id", flat=True)) == [indicator(1)["id"]]
    assert answer(community.bank_a_reporter, "POST", objects_url) == 202


def test_errors_are_taxii_error_messages(live_server, token_of, community):
    own = submissions_collection(community.bank_a)
    user = community.bank_a_reporter
    secret = token_of(user)
    objects_url = f"{live_server.url}/taxii2/api/collections/{own.pk}/objects/"

    anonymous = requests.get(objects_url, headers={"Accept": TAXII_MEDIA_TYPE}, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["Content-Type"] == TAXII_MEDIA_TYPE
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert anonymous.json()["http_status"] == "401"

    assert _get(user, secret, objects_url, accept="text/html").status_code == 406
    hidden = submissions_collection(community.bank_b)
    missing = _get(user, secret, f"{live_server.url}/taxii2/api/collections/{hidden.pk}/objects/")
    assert missing.status_code == 404
    assert missing.json()["title"]

    def post(body: bytes, content_type: str = TAXII_MEDIA_TYPE) -> requests.Response:
        return requests.post(
            objects_url,
            data=body,
            auth=(user.username, secret),
            headers={"Accept": TAXII_MEDIA_TYPE, "Content-Type": content_type},
            timeout=10,
        )

    assert post(b"{}", content_type="application/json").status_code == 415
    not_json = post(b"{not json")
    assert not_json.status_code == 400
    assert not_json.json()["description"]
    assert _get(user, secret, objects_url, limit="0").status_code == 400
    assert _get(user, secret, objects_url, added_after="yesterday").status_code == 400
    assert _get(user, secret, objects_url, next="garbage").status_code == 400
    assert not StixObject.objects.exists()


def test_taxii2client_reports_a_forbidden_write(taxii, community):
    own = submissions_collection(community.bank_a)
    reader = _collection(taxii(community.fsa_coordinator), own)
    with pytest.raises(TAXIIServiceException):
        reader.add_objects(_envelope(indicator(1)))  # the client refuses: can_write is false


def test_advisories_to_me_is_a_read_only_view_of_the_inbox(taxii, token_of, community):
    to_finance = advisory_for(
        community.fsa_coordinator, sectors=[community.finance], title="金融分野への注意喚起"
    )
    advisory_for(community.mhlw_coordinator, sectors=[community.medical], title="医療分野への注意喚起")
    bank = taxii(community.bank_a_reporter).api_roots[0]
    advisories = next(item for item in bank.collections if item.id == str(ADVISORIES.id))
    assert advisories.can_read and not advisories.can_write
    received = advisories.get_objects()["objects"]
    reports = [obj for obj in received if obj["type"] == "report"]
    assert [report["name"] for report in reports] == ["金融分野への注意喚起"]
    assert len({(obj["id"], obj.get("modified")) for obj in received}) == len(received)
    assert advisories.get_manifest()["objects"]
    assert advisories.get_object(reports[0]["id"])["objects"][0]["name"] == "金融分野への注意喚起"
    assert advisories.object_versions(reports[0]["id"])["versions"]

    # Issued after the last poll: only the new advisory's objects come back.
    secret = token_of(community.bank_a_reporter)
    first = _get(community.bank_a_reporter, secret, f"{advisories.url}objects/")
    later = advisory_for(community.fsa_coordinator, sectors=[community.finance], title="続報")
    polled = _get(
        community.bank_a_reporter,
        secret,
        f"{advisories.url}objects/",
        added_after=first.headers["X-TAXII-Date-Added-Last"],
    ).json()
    assert {obj["name"] for obj in polled["objects"] if obj["type"] == "report"} == {later.title}
    pages = list(as_pages(advisories.get_objects, per_request=1))
    assert [obj["name"] for page in pages for obj in page["objects"] if obj["type"] == "report"] == [
        to_finance.title,
        later.title,
    ]

    hospital = taxii(community.hospital_reporter).api_roots[0]
    theirs = next(item for item in hospital.collections if item.id == str(ADVISORIES.id))
    names = {obj.get("name") for obj in theirs.get_objects()["objects"] if obj["type"] == "report"}
    assert names == {"医療分野への注意喚起"}
    refused = requests.post(
        f"{advisories.url}objects/",
        data=_envelope(indicator(1)),
        auth=(community.bank_a_reporter.username, secret),
        headers={"Accept": TAXII_MEDIA_TYPE, "Content-Type": TAXII_MEDIA_TYPE},
        timeout=10,
    )
    assert refused.status_code == 403


def test_reports_and_anonymized_copies_are_read_only_views_too(taxii, token_of, community):
    report = report_for(community.bank_a_reporter, community.bank_a, anonymized_copy_consent=True)
    ministry = taxii(community.fsa_coordinator).api_roots[0]
    reports = next(item for item in ministry.collections if item.id == str(REPORTS.id))
    assert reports.can_read and not reports.can_write
    received = reports.get_objects()["objects"]
    assert [obj["name"] for obj in received if obj["type"] == "report"] == [report.title]
    hospital = taxii(community.hospital_reporter).api_roots[0]
    theirs = next(item for item in hospital.collections if item.id == str(REPORTS.id))
    assert theirs.get_objects().get("objects", []) == [], "a report outside one's audience is not there"

    # An update brings the report back to a poll, at its new version.
    secret = token_of(community.fsa_coordinator)
    first = _get(community.fsa_coordinator, secret, f"{reports.url}objects/")
    sharing_services.report_update(
        author=community.bank_a_reporter,
        report=report,
        data=report_input(community.bank_a, title="続報: 不正アクセスの疑い", anonymized_copy_consent=True),
    )
    polled = _get(
        community.fsa_coordinator,
        secret,
        f"{reports.url}objects/",
        added_after=first.headers["X-TAXII-Date-Added-Last"],
    ).json()
    assert {obj["name"] for obj in polled["objects"] if obj["type"] == "report"} == {
        "続報: 不正アクセスの疑い"
    }

    copy = anonymized_copy_for(community.nisc_coordinator, report)
    copies = next(item for item in hospital.collections if item.id == str(ANONYMIZED_REPORTS.id))
    objects = copies.get_objects()["objects"]
    assert [obj["name"] for obj in objects if obj["type"] == "report"] == [copy.title]
    assert community.bank_a.name_ja not in json.dumps(objects, ensure_ascii=False), "the source stays hidden"


def test_an_address_the_server_does_not_have_gets_a_taxii_error(live_server, token_of, community):
    user = community.bank_a_reporter
    secret = token_of(user)
    own = submissions_collection(community.bank_a)
    taxii = f"{live_server.url}/taxii2"
    for address in (f"{taxii}/nope/", f"{taxii}/api/collections/not-a-uuid/objects/"):
        missing = _get(user, secret, address)
        assert missing.status_code == 404, address
        assert missing.headers["Content-Type"] == TAXII_MEDIA_TYPE
        assert missing.json()["http_status"] == "404"
    no_slash = _get(user, secret, f"{taxii}/api/collections/{own.pk}/objects")
    assert no_slash.status_code == 404
    assert no_slash.json()["description"]
    assert requests.get(f"{taxii}/nope/", timeout=10).status_code == 401


def test_the_first_version_and_the_spec_version_can_be_chosen(taxii, community):
    own = submissions_collection(community.bank_a)
    first, newer = indicator(1), indicator(1, modified="2026-11-02T00:00:00.000Z")
    ingest(own, [newer, first, indicator(2)], user=community.bank_a_reporter)
    reader = _collection(taxii(community.nisc_coordinator), own)
    earliest = reader.get_objects(version="first")["objects"]
    assert sorted((obj["id"], obj["modified"]) for obj in earliest) == sorted(
        (obj["id"], obj["modified"]) for obj in (first, indicator(2))
    )
    assert len(reader.get_objects(spec_version="2.1")["objects"]) == 2
    assert "objects" not in reader.get_objects(spec_version="2.0")


def test_an_envelope_over_the_size_limit_is_refused(live_server, token_of, community, monkeypatch):
    monkeypatch.setattr("renkei.interop.taxii.MAX_BUNDLE_BYTES", 1000)
    user = community.bank_a_reporter
    own = submissions_collection(community.bank_a)
    answer = requests.post(
        f"{live_server.url}/taxii2/api/collections/{own.pk}/objects/",
        data=_envelope(*(indicator(number) for number in range(10))),
        auth=(user.username, token_of(user)),
        headers={"Accept": TAXII_MEDIA_TYPE, "Content-Type": TAXII_MEDIA_TYPE},
        timeout=10,
    )
    assert answer.status_code == 413
    assert answer.json()["http_status"] == "413"
    assert not StixObject.objects.exists()
