"""Imported STIX objects take part in correlation: their observables are indexed on import, shown as
"seen elsewhere" only to those who may open both sides, and forgotten when deleted."""

import pytest
from django_tasks_db.models import DBTaskResult

from renkei.correlation.choices import SourceKind
from renkei.correlation.models import Sighting
from renkei.correlation.services import correlate, seen_elsewhere
from renkei.interop.models import StixObject
from renkei.interop.observables import stix_observables
from renkei.interop.services import ingest, submissions_collection
from renkei.interop.tests.stix_objects import indicator
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
    ],
)
def test_the_observables_a_stix_object_states(obj, expected):
    assert stix_observables(obj) == expected


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
