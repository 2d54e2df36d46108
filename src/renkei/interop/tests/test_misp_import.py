"""MISP event import, round-tripped with PyMISP's own MISPEvent objects."""

import datetime as dt
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from pymisp import MISPEvent, MISPObject

from renkei.directory.choices import Role
from renkei.directory.tests.factories import member
from renkei.interop.misp_import import convert_event, event_label
from renkei.interop.models import Collection, IngestStatus, StixObject
from renkei.interop.services import submissions_collection
from renkei.sharing.choices import Tlp
from renkei.sharing.stix import TLP_MARKING_IDS, pattern
from renkei.sharing.tests.factories import EVERY_OBSERVABLE_TYPE, bearer, report_for

pytestmark = pytest.mark.django_db

CHANGED = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)


def _event(*, tlp: str | None = "tlp:amber", distribution: int = 1) -> MISPEvent:
    event = MISPEvent()
    event.info = "フィッシングサイトの報告"
    event.set_date(dt.date(2026, 11, 20))
    event.timestamp = CHANGED
    event.distribution = distribution
    event.threat_level_id = 2
    if tlp:
        event.add_tag(tlp)
    event.add_tag("phishing")
    for misp_type, value in [
        ("ip-dst", "203.0.113.7"),
        ("domain", "Evil.Example.COM"),
        ("url", "https://evil.example.com/login"),
        ("sha256", "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"),
        ("ip-dst|port", "2001:db8::1|443"),
    ]:
        event.add_attribute(misp_type, value, timestamp=CHANGED)
    return event


def _post(client, user, event: MISPEvent | dict, collection: Collection | None = None):
    url = "/api/v1/misp/events" + (f"?collection={collection.pk}" if collection else "")
    body = json.dumps(event) if isinstance(event, dict) else event.to_json()
    return client.post(url, data=body, content_type="application/json", headers=bearer(user))


def _in_english(user):
    """The user, having chosen English: the API answers in their language."""
    user.language = "en"
    user.save(update_fields=["language"])
    return user


def _stored() -> dict[str, dict]:
    return {row.stix_id: json.loads(row.body) for row in StixObject.objects.filter(is_latest=True)}


def test_an_event_becomes_a_report_with_one_indicator_per_attribute(client, community):
    event = _event()
    answer = _post(client, community.bank_a_reporter, event)
    assert answer.status_code == 201, answer.content
    assert answer.json()["failure_count"] == 0

    stored = {row.stix_id: json.loads(row.body) for row in StixObject.objects.all()}
    report = stored[f"report--{event.uuid}"]
    assert report["name"] == "フィッシングサイトの報告"
    assert report["labels"] == ["phishing"]
    patterns = sorted(stored[ref]["pattern"] for ref in report["object_refs"])
    assert patterns == sorted(
        [
            "[ipv4-addr:value = '203.0.113.7']",
            "[domain-name:value = 'evil.example.com']",
            "[url:value = 'https://evil.example.com/login']",
            "[file:hashes.'SHA-256' = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']",
            "[ipv6-addr:value = '2001:db8::1']",
        ]
    )
    ids = {f"indicator--{attribute.uuid}" for attribute in event.attributes}
    assert set(report["object_refs"]) == ids
    assert all(
        obj["modified"] == "2026-11-20T09:30:00.000Z" for obj in stored.values() if obj["type"] == "indicator"
    )

    again = _post(client, community.bank_a_reporter, event)
    assert again.json()["success_count"] == answer.json()["success_count"]
    assert StixObject.objects.count() == len(stored)  # nothing stored twice


def test_a_changed_attribute_supersedes_its_earlier_version(client, community):
    event = _event()
    _post(client, community.bank_a_reporter, event)
    # As MISP serves the event after an edit: the attribute carries its new timestamp.
    changed = json.loads(event.to_json())
    changed["Attribute"][0] |= {"comment": "confirmed C2", "timestamp": str(int(CHANGED.timestamp()) + 3600)}
    answer = client.post(
        "/api/v1/misp/events",
        data=json.dumps(changed),
        content_type="application/json",
        headers=bearer(community.bank_a_reporter),
    )
    assert answer.status_code == 201
    versions = StixObject.objects.filter(stix_id=f"indicator--{event.attributes[0].uuid}").order_by("version")
    assert [row.is_latest for row in versions] == [False, True]
    assert json.loads(versions[1].body)["description"] == "confirmed C2"


def test_attributes_without_a_stix_equivalent_are_listed(client, community):
    event = _event()
    event.add_attribute("text", "free text")
    event.add_attribute("ip-dst", "not-an-ip")
    body = _post(client, community.bank_a_reporter, event).json()
    assert body["failure_count"] == 2
    reasons = " ".join(failure["message"] for failure in body["failures"])
    assert "text" in reasons
    assert "not-an-ip" in reasons


@pytest.mark.parametrize(
    ("tlp", "distribution", "label"),
    [
        ("tlp:amber", 1, Tlp.AMBER),
        ("tlp:green", 3, Tlp.GREEN),
        ("tlp:white", 3, Tlp.CLEAR),
        ("tlp:clear", 0, Tlp.AMBER_STRICT),  # "your organisation only" narrows a CLEAR tag
        (None, 2, Tlp.GREEN),
        ("tlp:red", 3, Tlp.RED),
        ("tlp:amber+strict", 4, Tlp.AMBER_STRICT),
    ],
)
def test_the_label_is_the_narrowest_of_tag_and_distribution(tlp, distribution, label):
    event = json.loads(_event(tlp=tlp, distribution=distribution).to_json())
    assert event_label(event) == label
    conversion = convert_event(event, collection_tlp=label)
    assert conversion.label == label
    markings = {ref for obj in conversion.objects for ref in obj.get("object_marking_refs", [])}
    assert markings == {misp_marking(label)}


def misp_marking(label: str) -> str:
    return TLP_MARKING_IDS[label]


def test_an_event_is_never_shared_wider_than_its_label(client, community):
    answer = _post(client, community.bank_a_reporter, _event(tlp="tlp:red"))
    assert answer.status_code == 422
    assert "TLP:RED" in answer.json()["detail"]
    assert not StixObject.objects.exists()
    assert not IngestStatus.objects.exists()

    red = Collection.objects.create(owner=community.bank_a, title="Red intake", tlp=Tlp.RED)
    officer = member(community.bank_a, Role.OFFICER, "bank_a_red_officer")
    refused = _post(client, community.bank_a_admin, _event(tlp="tlp:red"), collection=red)
    assert refused.status_code == 404  # an administrator who is not an officer cannot read RED
    accepted = _post(client, officer, _event(tlp="tlp:red"), collection=red)
    assert accepted.status_code == 201


def test_an_attribute_is_never_shared_wider_than_its_own_label(client, community):
    event = _event()  # TLP:AMBER, going into the AMBER submissions collection
    red = event.add_attribute("domain", "red-only.example", timestamp=CHANGED)
    red.add_tag("tlp:red")
    own_organisation = event.add_attribute("domain", "in-house.example", timestamp=CHANGED, distribution=0)
    inherited = event.add_attribute("domain", "inherited.example", timestamp=CHANGED, distribution=5)
    inherited.add_tag("tlp:clear")  # cannot widen the event's AMBER
    in_house_object = MISPObject("domain-ip")
    in_house_object.distribution = 0
    object_attribute = in_house_object.add_attribute("ip", value="198.51.100.4", timestamp=CHANGED)
    event.add_object(in_house_object)

    answer = _post(client, _in_english(community.bank_a_reporter), event)
    assert answer.status_code == 201, answer.content
    body = answer.json()
    withheld = {f"indicator--{item.uuid}" for item in (red, own_organisation, object_attribute)}
    assert {failure["id"] for failure in body["failures"]} == withheld
    messages = {failure["id"]: failure["message"] for failure in body["failures"]}
    assert messages[f"indicator--{red.uuid}"] == (
        "The attribute is TLP:RED but the collection is TLP:AMBER: it was left out so that it is not "
        "shared further than its source allowed. Import the event into a collection labelled TLP:RED "
        "or narrower to keep it."
    )
    assert "TLP:AMBER+STRICT" in messages[f"indicator--{own_organisation.uuid}"]
    assert "TLP:AMBER+STRICT" in messages[f"indicator--{object_attribute.uuid}"]
    assert "red-only.example" not in answer.content.decode()  # not even named in the status
    stored = _stored()
    assert not withheld & set(stored)
    assert not withheld & set(stored[f"report--{event.uuid}"]["object_refs"])
    assert stored[f"indicator--{inherited.uuid}"]["object_marking_refs"] == [TLP_MARKING_IDS[Tlp.AMBER]]


def test_a_narrow_collection_keeps_each_attribute_under_its_own_label():
    event = _event()
    red = event.add_attribute("domain", "red-only.example", timestamp=CHANGED)
    red.add_tag("tlp:red")
    conversion = convert_event(json.loads(event.to_json()), collection_tlp=Tlp.RED)
    assert conversion.failures == []
    indicators = [obj for obj in conversion.objects if obj["type"] == "indicator"]
    markings = {indicator["id"]: indicator["object_marking_refs"] for indicator in indicators}
    assert markings.pop(f"indicator--{red.uuid}") == [TLP_MARKING_IDS[Tlp.RED]]
    assert set(map(tuple, markings.values())) == {(TLP_MARKING_IDS[Tlp.AMBER],)}
    definitions = {obj["id"] for obj in conversion.objects if obj["type"] == "marking-definition"}
    assert definitions == {TLP_MARKING_IDS[Tlp.AMBER], TLP_MARKING_IDS[Tlp.RED]}


def test_attributes_of_misp_objects_are_imported(client, community):
    event = _event()
    domain_ip = MISPObject("domain-ip")
    domain = domain_ip.add_attribute("domain", value="c2.example.net", timestamp=CHANGED)
    address = domain_ip.add_attribute("ip", value="198.51.100.23", timestamp=CHANGED)
    note = domain_ip.add_attribute("text", value="seen in the campaign", timestamp=CHANGED)
    event.add_object(domain_ip)

    body = _post(client, _in_english(community.bank_a_reporter), event).json()
    assert [failure["id"] for failure in body["failures"]] == [f"indicator--{note.uuid}"]
    assert body["failures"][0]["message"] == "attribute type text has no STIX indicator here"
    stored = _stored()
    assert {f"indicator--{domain.uuid}", f"indicator--{address.uuid}"} <= set(
        stored[f"report--{event.uuid}"]["object_refs"]
    )
    assert stored[f"indicator--{domain.uuid}"]["pattern"] == "[domain-name:value = 'c2.example.net']"
    assert stored[f"indicator--{address.uuid}"]["pattern"] == "[ipv4-addr:value = '198.51.100.23']"


def test_an_event_not_yet_saved_to_misp_is_imported(client, community):
    event = MISPEvent()  # as PyMISP writes it before MISP adds a date and timestamps
    event.info = "x"
    attribute = event.add_attribute("domain", "bad.example")
    written = json.loads(event.to_json())
    assert not {"date", "timestamp"} & set(written)
    assert "timestamp" not in written["Attribute"][0]

    before = timezone.now().replace(microsecond=0)
    answer = _post(client, community.bank_a_reporter, event)
    assert answer.status_code == 201, answer.content
    assert answer.json()["failure_count"] == 0
    indicator = _stored()[f"indicator--{attribute.uuid}"]
    assert dt.datetime.fromisoformat(indicator["modified"]) >= before  # the import time


def test_unreadable_times_are_named(client, community):
    event = json.loads(_event().to_json())
    event["Attribute"][0]["timestamp"] = "yesterday"
    body = _post(client, _in_english(community.bank_a_reporter), event).json()
    assert [failure["message"] for failure in body["failures"]] == [
        "the attribute's timestamp is yesterday, not a number of seconds since 1970-01-01"
    ]

    for field, value, message in [
        ("timestamp", "soon", "the event's timestamp is soon, not a number of seconds since 1970-01-01"),
        ("publish_timestamp", "", None),  # empty as absent
        ("date", "20-11-2026", "the event's date is 20-11-2026, not a date written YYYY-MM-DD"),
    ]:
        event = json.loads(_event().to_json()) | {field: value}
        answer = _post(client, _in_english(community.bank_a_reporter), event)
        if message is None:
            assert answer.status_code == 201, answer.content
        else:
            assert answer.status_code == 400
            assert answer.json()["detail"] == message


def test_unreadable_events_are_refused(client, community):
    for body in (b"{not json", b"[]", json.dumps({"Event": {"info": "no uuid"}}).encode()):
        answer = client.post(
            "/api/v1/misp/events",
            data=body,
            content_type="application/json",
            headers=bearer(community.bank_a_reporter),
        )
        assert answer.status_code == 400
        assert answer.json()["detail"]
    assert not StixObject.objects.exists()


def test_round_trip_from_renkei_export_through_pymisp(client, community):
    """A report exported as MISP, loaded by PyMISP and imported again keeps every observable."""
    report = report_for(community.bank_a_reporter, observables=EVERY_OBSERVABLE_TYPE)
    exported = client.get(f"/api/v1/reports/{report.pk}/misp", headers=bearer(community.bank_a_reporter))
    event = MISPEvent()
    event.from_dict(**exported.json())
    answer = _post(client, community.bank_a_reporter, event)
    assert answer.status_code == 201, answer.content
    assert answer.json()["failure_count"] == 0
    imported = {json.loads(row.body)["pattern"] for row in StixObject.objects.filter(type="indicator")}
    assert imported == {pattern(observable_type, value) for observable_type, value in EVERY_OBSERVABLE_TYPE}


def test_web_import_of_a_misp_event(client, community):
    own = submissions_collection(community.bank_a)
    client.force_login(community.bank_a_reporter)
    upload = SimpleUploadedFile("event.json", _event().to_json().encode(), "application/json")
    answer = client.post(
        reverse("interop:bundle_upload", args=[own.pk]), {"format": "misp", "bundle": upload}
    )
    assert answer.status_code == 302
    assert StixObject.objects.filter(type="report").count() == 1
