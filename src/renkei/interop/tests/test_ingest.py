"""What a write stores, whichever way it came (upload, TAXII, feed, MISP event): all go through ingest."""

import pytest
from django.utils import translation

from renkei.interop.models import Collection, StixObject
from renkei.interop.services import ingest, submissions_collection
from renkei.interop.stix_validation import TLP_V1_MARKINGS
from renkei.interop.tests.stix_objects import indicator
from renkei.sharing.choices import Tlp
from renkei.sharing.stix import TLP_MARKING_IDS

ADDRESS = {
    "type": "ipv4-addr",
    "spec_version": "2.1",
    "id": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd",
    "value": "198.51.100.7",
}


@pytest.mark.django_db
def test_an_observable_sent_again_is_the_one_held(community):
    """A cyber-observable has neither `modified` nor `created`: its one version is when it arrived."""
    own = submissions_collection(community.bank_a)
    first = ingest(own, [ADDRESS, ADDRESS], user=community.bank_a_reporter)
    again = ingest(own, [ADDRESS], user=community.bank_a_reporter)

    stored = StixObject.objects.get(collection=own)
    assert stored.is_latest
    assert first.successes[0] == first.successes[1] == again.successes[0]
    assert again.successes[0]["version"].startswith(stored.version.strftime("%Y-%m-%dT%H:%M:%S.%f"))
    # Another collection received it separately: that is its own first version there.
    other = Collection.objects.create(owner=community.bank_a, title="Other")
    ingest(other, [ADDRESS], user=community.bank_a_reporter)
    assert StixObject.objects.filter(stix_id=ADDRESS["id"]).count() == 2


@pytest.mark.django_db
def test_objects_marked_narrower_than_the_collection_are_refused(community):
    own = submissions_collection(community.bank_a)
    assert own.tlp == Tlp.AMBER

    def marked(number: int, *markings: str) -> dict:
        return indicator(number, object_marking_refs=list(markings))

    refused = [
        marked(1, TLP_MARKING_IDS[Tlp.RED]),
        marked(2, TLP_V1_MARKINGS["red"]),
        marked(3, TLP_MARKING_IDS[Tlp.AMBER_STRICT]),
        marked(4, TLP_MARKING_IDS[Tlp.GREEN], TLP_MARKING_IDS[Tlp.RED]),  # the narrowest counts
    ]
    within = [
        marked(5, TLP_MARKING_IDS[Tlp.AMBER]),
        marked(6, TLP_MARKING_IDS[Tlp.GREEN]),
        marked(7, TLP_V1_MARKINGS["white"]),
        indicator(8),  # unmarked: the collection's label is its label
    ]
    with translation.override("en"):
        status = ingest(own, [*refused, *within], user=community.bank_a_reporter)

    assert (status.total_count, status.success_count, status.failure_count) == (8, 4, 4)
    assert [failure["id"] for failure in status.failures] == [obj["id"] for obj in refused]
    assert status.failures[0]["version"] == refused[0]["modified"]
    assert status.failures[0]["message"] == (
        "marked TLP:RED, but this collection shares at TLP:AMBER: it would reach more people than "
        "its source allowed"
    )
    assert "TLP:AMBER+STRICT" in status.failures[2]["message"]
    stored = set(StixObject.objects.filter(collection=own).values_list("stix_id", flat=True))
    assert stored == {obj["id"] for obj in within}

    red = Collection.objects.create(owner=community.bank_a, title="Red", tlp=Tlp.RED)
    assert ingest(red, refused, user=community.bank_a_reporter).failure_count == 0
