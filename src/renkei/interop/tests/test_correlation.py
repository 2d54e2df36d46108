"""Imported STIX objects take part in correlation: their observables are indexed on import, shown as
"seen elsewhere" only to those who may open both sides, and forgotten when deleted."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from renkei.correlation.choices import SourceKind
from renkei.correlation.models import Sighting
from renkei.correlation.services import correlate, seen_elsewhere
from renkei.interop.models import Collection, StixObject
from renkei.interop.observables import stix_observables
from renkei.interop.services import ingest, submissions_collection
from renkei.interop.tests.stix_objects import indicator
from renkei.sharing.choices import Tlp
from renkei.sharing.tests.factories import bearer, report_for

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (indicator(5), [("ipv4-addr", "198.51.100.5")]),
        (
            indicator(
                1, pattern="[domain-name:value = 'evil.example' OR url:value = 'http://x.example/it\\'s']"
            ),
            [("domain-name", "evil.example"), ("url", "http://x.example/it's")],
        ),
        (
            indicator(1, pattern="[file:hashes.'SHA-256' = 'AB' AND file:hashes.MD5 = 'cd']"),
            [("file:hashes.SHA-256", "AB"), ("file:hashes.MD5", "cd")],
        ),
        (indicator(1, pattern="[autonomous-system:number = 64496]"), [("autonomous-system", "64496")]),
        (indicator(1, pattern="[ipv4-addr:value ISSUBSET '198.51.100.0/24']"), []),
        (indicator(1, pattern_type="sigma", pattern="title: x"), []),
        ({"type": "ipv6-addr", "id": "ipv6-addr--x", "value": "2001:db8::1"}, [("ipv6-addr", "2001:db8::1")]),
        (
            {"type": "file", "id": "file--x", "hashes": {"SHA-1": "aa", "SSDEEP": "3:x"}},
            [("file:hashes.SHA-1", "aa")],
        ),
        ({"type": "identity", "id": "identity--x", "name": "n"}, []),
        (
            {
                "type": "observed-data",
                "id": "observed-data--x",
                "objects": {"0": {"type": "domain-name", "value": "evil.example"}, "1": "not an object"},
            },
            [("domain-name", "evil.example")],
        ),
    ],
)
def test_the_observables_a_stix_object_states(obj, expected):
    assert stix_observables(obj) == expected


@pytest.mark.parametrize(
    ("name", "observable_type"),
    [
        ("'SHA-256'", "file:hashes.SHA-256"),
        ("SHA256", "file:hashes.SHA-256"),
        ("sha256", "file:hashes.SHA-256"),
        ("'sha-256'", "file:hashes.SHA-256"),
        ("'SHA256'", "file:hashes.SHA-256"),
        ("'SHA-1'", "file:hashes.SHA-1"),
        ("SHA1", "file:hashes.SHA-1"),
        ("sha1", "file:hashes.SHA-1"),
        ("'Sha-1'", "file:hashes.SHA-1"),
        ("MD5", "file:hashes.MD5"),
        ("md5", "file:hashes.MD5"),
        ("'MD5'", "file:hashes.MD5"),
        # Algorithms Renkei has no observable type for state nothing; SHA3-256 is not SHA-256.
        ("'SHA3-256'", None),
        ("SHA3256", None),
        ("'SHA-512'", None),
        ("SHA512", None),
        ("'SHA3-512'", None),
        ("SSDEEP", None),
        ("TLSH", None),
    ],
)
def test_every_spelling_of_a_known_hash_algorithm_is_recognized(name, observable_type):
    expected = [(observable_type, "AB12")] if observable_type else []
    pattern = indicator(1, pattern=f"[file:hashes.{name} = 'AB12']")
    assert stix_observables(pattern) == expected
    dictionary_key = name.strip("'")
    sco = {"type": "file", "id": "file--x", "hashes": {dictionary_key: "AB12"}}
    assert stix_observables(sco) == expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("[network-traffic:dst_ref.value = '198.51.100.1']", [("ipv4-addr", "198.51.100.1")]),
        ("[network-traffic:src_ref.value = '198.51.100.0/24']", [("ipv4-addr", "198.51.100.0/24")]),
        ("[network-traffic:dst_ref.value = '2001:db8::1']", [("ipv6-addr", "2001:db8::1")]),
        ("[network-traffic:dst_ref.value = 'c2.example']", [("domain-name", "c2.example")]),
        (
            "[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '198.51.100.2'"
            " AND network-traffic:dst_port = 443]",
            [("ipv4-addr", "198.51.100.2")],
        ),
        ("[network-traffic:dst_ref.value LIKE '198.51.100.%']", []),
    ],
)
def test_network_traffic_endpoints_are_typed_by_the_form_of_their_value(pattern, expected):
    assert stix_observables(indicator(1, pattern=pattern)) == expected


def test_imported_hashes_in_any_spelling_correlate_with_a_reported_hash(community, ingest_indexed):
    digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    report = report_for(community.hospital_reporter, observables=[("file:hashes.SHA-256", digest)])
    own = submissions_collection(community.bank_a)
    pattern = indicator(1, pattern=f"[file:hashes.sha256 = '{digest.upper()}']")
    sco = {"type": "file", "spec_version": "2.1", "id": f"file--{uuid.uuid4()}", "hashes": {"SHA256": digest}}
    endpoint = indicator(2, pattern="[network-traffic:dst_ref.value = '198.51.100.9']")
    ingest_indexed(own, [pattern, sco, endpoint], user=community.bank_a_reporter)
    assert StixObject.objects.filter(collection=own).count() == 3, "all three are valid STIX"
    stored = {StixObject.objects.get(stix_id=obj["id"]).pk for obj in (pattern, sco)}
    assert set(correlate("file:hashes.SHA-256", digest, exclude=[(SourceKind.REPORT, str(report.pk))])) == {
        (SourceKind.STIX, str(pk)) for pk in stored
    }
    assert correlate("ipv4-addr", "198.51.100.9") == [
        (SourceKind.STIX, str(StixObject.objects.get(stix_id=endpoint["id"]).pk))
    ]


def test_an_import_queues_its_indexing_with_its_objects(community):
    ingest(submissions_collection(community.bank_a), [indicator(7)], user=community.bank_a_reporter)
    assert correlate("ipv4-addr", "198.51.100.7") == [], "the worker indexes, not the import"
    # Queued in the import's own transaction, so no commit can leave the objects unindexed.
    assert DBTaskResult.objects.filter(task_path__endswith=".stix_sightings_index").count() == 1


def test_imported_indicators_correlate_with_reports_as_far_as_each_reader_may_see(community, ingest_indexed):
    report = report_for(community.hospital_reporter, observables=[("ipv4-addr", "198.51.100.5")])
    own = submissions_collection(community.bank_a)
    ingest_indexed(own, [indicator(5), indicator(6)], user=community.bank_a_reporter)
    stored = StixObject.objects.get(stix_id=indicator(5)["id"])
    assert (SourceKind.STIX, str(stored.pk)) in correlate("ipv4-addr", "198.51.100.5")

    # Bank A sees its own object, not the hospital's report; the centre is told how many it cannot open.
    mine = seen_elsewhere(SourceKind.REPORT, report.pk, community.hospital_reporter)
    assert [link for item in mine.observables for link in item.links] == []
    theirs = seen_elsewhere(SourceKind.STIX, stored.pk, community.bank_a_reporter)
    assert [link for item in theirs.observables for link in item.links] == []
    centre = seen_elsewhere(SourceKind.STIX, stored.pk, community.nisc_coordinator)
    assert {link.url for item in centre.observables for link in item.links} == {
        f"/sharing/reports/{report.pk}/"
    }


def test_a_deleted_object_stops_correlating(community, client, ingest_indexed):
    own = submissions_collection(community.bank_a)
    ingest_indexed(own, [indicator(5)], user=community.bank_a_reporter)
    assert Sighting.objects.filter(source_kind=SourceKind.STIX).count() == 1
    answer = client.delete(
        f"/taxii2/api/collections/{own.pk}/objects/{indicator(5)['id']}/",
        headers=bearer(community.bank_a_reporter) | {"Accept": "application/taxii+json;version=2.1"},
    )
    assert answer.status_code == 200
    assert not Sighting.objects.filter(source_kind=SourceKind.STIX).exists()
    assert correlate("ipv4-addr", "198.51.100.5") == []


def _linked(seen) -> list[str]:
    return [link.url for item in seen.observables for link in item.links]


def _hidden(seen) -> list[int | None]:
    return [item.hidden_count for item in seen.observables]


def test_other_versions_of_an_object_are_not_elsewhere_but_the_same_object_in_another_collection_is(
    community, ingest_indexed
):
    c = community
    own = submissions_collection(c.bank_a)
    ingest_indexed(own, [indicator(5)], user=c.bank_a_reporter)
    ingest_indexed(own, [indicator(5, modified="2026-11-02T00:00:00.000Z")], user=c.bank_a_reporter)
    older, newest = StixObject.objects.filter(collection=own).order_by("version")
    for version in (newest, older):
        seen = seen_elsewhere(SourceKind.STIX, version.pk, c.nisc_coordinator)
        assert (_linked(seen), _hidden(seen), seen.anything) == ([], [0], False)

    # Shared again, separately, through bank B's own collection: seen elsewhere, once.
    theirs = submissions_collection(c.bank_b)
    ingest_indexed(theirs, [indicator(5)], user=c.bank_b_reporter)
    elsewhere = StixObject.objects.get(collection=theirs)
    seen = seen_elsewhere(SourceKind.STIX, newest.pk, c.nisc_coordinator)
    assert (_linked(seen), _hidden(seen)) == ([reverse("interop:object_detail", args=[elsewhere.pk])], [0])
    seen = seen_elsewhere(SourceKind.STIX, elsewhere.pk, c.nisc_coordinator)
    assert (_linked(seen), _hidden(seen)) == ([reverse("interop:object_detail", args=[newest.pk])], [0])


def test_the_versions_of_an_object_are_linked_and_counted_once(community, ingest_indexed):
    c = community
    report = report_for(c.hospital_reporter, observables=[("ipv4-addr", "198.51.100.5")])
    own = submissions_collection(c.bank_a)
    ingest_indexed(own, [indicator(5)], user=c.bank_a_reporter)
    ingest_indexed(own, [indicator(5, modified="2026-11-02T00:00:00.000Z")], user=c.bank_a_reporter)
    # The newest version no longer states the address: the link goes to the newest one that does.
    ingest_indexed(
        own,
        [indicator(5, modified="2026-11-03T00:00:00.000Z", pattern="[ipv4-addr:value = '198.51.100.6']")],
        user=c.bank_a_reporter,
    )
    stating = StixObject.objects.get(collection=own, version__day=2)
    seen = seen_elsewhere(SourceKind.REPORT, report.pk, c.nisc_coordinator)
    assert (_linked(seen), _hidden(seen)) == ([reverse("interop:object_detail", args=[stating.pk])], [0])

    # Bank B's own, named people only: the centre may not open it, and counts its versions once.
    closed = Collection.objects.create(owner=c.bank_b, title="Bank B only", tlp=Tlp.RED)
    ingest_indexed(closed, [indicator(5)], user=c.bank_b_reporter)
    ingest_indexed(closed, [indicator(5, modified="2026-11-02T00:00:00.000Z")], user=c.bank_b_reporter)
    assert StixObject.objects.filter(collection=closed).count() == 2
    seen = seen_elsewhere(SourceKind.REPORT, report.pk, c.nisc_coordinator)
    assert (_linked(seen), _hidden(seen)) == ([reverse("interop:object_detail", args=[stating.pk])], [1])


def test_telling_the_versions_apart_costs_the_same_for_any_number_of_observables(community, ingest_indexed):
    c = community
    own = submissions_collection(c.bank_a)

    def queries_for(numbers) -> int:
        observables = [("ipv4-addr", f"198.51.100.{n}") for n in numbers]
        report = report_for(c.hospital_reporter, observables=observables)
        for modified in ("2026-11-01T00:00:00.000Z", "2026-11-02T00:00:00.000Z"):
            ingest_indexed(own, [indicator(n, modified=modified) for n in numbers], user=c.bank_a_reporter)
        with CaptureQueriesContext(connection) as queries:
            seen = seen_elsewhere(SourceKind.REPORT, report.pk, c.nisc_coordinator)
        assert [len(item.links) for item in seen.observables] == [1] * len(numbers)
        return len(queries)

    queries_for([9])  # the first answer also fills the caches of who the reader is
    assert queries_for([10]) == queries_for([20, 21, 22, 23])
