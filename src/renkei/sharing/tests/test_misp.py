"""MISP event export: PyMISP's own `MISPEvent` loads every event and writes it back unchanged,
attributes carry every observable type, the TLP label becomes the taxonomy tag and a distribution
level, uuids stay the same from one export to the next, and an anonymized copy never gives away
its source."""

import json
import uuid

import pytest
from pymisp import MISPEvent

from renkei.sharing.choices import ObservableType, Tlp
from renkei.sharing.misp import ATTRIBUTE_TYPES, misp_uuid
from renkei.sharing.services import ObservableInput
from renkei.sharing.tests.factories import (
    EVERY_OBSERVABLE_TYPE,
    advisory_for,
    anonymized_copy_for,
    report_for,
)

# What docs/api.md documents, spelled out again so that a typo in the code cannot hide in both places.
EXPECTED_ATTRIBUTES = {
    ("ip-dst", "203.0.113.7"),
    ("ip-dst", "2001:db8::1"),
    ("domain", "evil.example.com"),
    ("url", "https://evil.example.com/login?next=it's"),
    ("email-src", "phish@evil.example.com"),
    ("mac-address", "00:1a:2b:3c:4d:5e"),
    ("AS", "64496"),
    ("md5", "d41d8cd98f00b204e9800998ecf8427e"),
    ("sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
    ("sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
}
DISTRIBUTIONS = {
    Tlp.RED: (0, "tlp:red"),
    Tlp.AMBER_STRICT: (0, "tlp:amber+strict"),
    Tlp.AMBER: (1, "tlp:amber"),
    Tlp.GREEN: (2, "tlp:green"),
    Tlp.CLEAR: (3, "tlp:clear"),
}


def export(client, url, auth) -> dict:
    response = client.get(url, headers=auth)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    return response.json()


def load(event: dict) -> MISPEvent:
    """The event as PyMISP reads it, after checking that PyMISP writes it back exactly as we wrote it
    and reads its own JSON back to the same attributes."""
    misp_event = MISPEvent()
    misp_event.load(json.dumps(event))
    written = misp_event.to_json()
    assert json.loads(written) == event["Event"]
    again = MISPEvent()
    again.load(written)
    assert attributes(again) == attributes(misp_event)
    return misp_event


def attributes(misp_event: MISPEvent) -> set[tuple[str, str, str]]:
    return {(a.type, a.category, a.value) for a in misp_event.attributes}


def types_and_values(misp_event: MISPEvent) -> set[tuple[str, str]]:
    return {(a.type, a.value) for a in misp_event.attributes}


def test_report_event_loads_in_pymisp_with_every_observable_as_an_attribute(
    client, community, headers, report_with_every_observable_type
):
    event = export(
        client,
        f"/api/v1/reports/{report_with_every_observable_type.pk}/misp",
        headers(community.fsa_coordinator),
    )

    misp_event = load(event)
    assert misp_event.info == report_with_every_observable_type.title
    assert misp_event.distribution == 1
    assert (misp_event.analysis, misp_event.threat_level_id) == (0, 4)
    assert misp_event.published is True
    assert misp_event.date.isoformat() == event["Event"]["date"]
    assert [tag.name for tag in misp_event.tags] == [
        "tlp:amber",
        'renkei:kind="failure"',
        'renkei:cause="intentional.intrusion"',
    ]
    assert misp_event.Orgc.name == "さくら銀行"
    assert types_and_values(misp_event) == EXPECTED_ATTRIBUTES
    assert {a.distribution for a in misp_event.attributes} == {5}
    assert {a.value for a in misp_event.attributes if not a.to_ids} == {"00:1a:2b:3c:4d:5e", "64496"}
    [narrative] = misp_event.event_reports
    assert narrative.content == report_with_every_observable_type.narrative
    initial, update = report_with_every_observable_type.versions.order_by("number")
    stamps = {a["value"]: a["timestamp"] for a in event["Event"]["Attribute"]}
    assert stamps[EVERY_OBSERVABLE_TYPE[0][1]] == str(int(initial.created_at.timestamp()))
    assert stamps[EVERY_OBSERVABLE_TYPE[-1][1]] == str(int(update.created_at.timestamp())), (
        "dated by its version"
    )


def test_every_observable_type_maps_to_an_attribute_type_and_category_misp_accepts():
    describe = MISPEvent().describe_types
    assert set(ATTRIBUTE_TYPES) == set(ObservableType)
    for misp_type, category in ATTRIBUTE_TYPES.values():
        assert misp_type in describe["category_type_mappings"][category]
        assert describe["sane_defaults"][misp_type]["default_category"] == category


def test_reexport_gives_the_same_uuids(client, community, headers, report_with_every_observable_type):
    url = f"/api/v1/reports/{report_with_every_observable_type.pk}/misp"
    first = export(client, url, headers(community.bank_a_reporter))["Event"]
    again = export(client, url, headers(community.nisc_coordinator))["Event"]
    assert (
        first["uuid"] == again["uuid"] == misp_uuid("event", "report", report_with_every_observable_type.pk)
    )
    assert [a["uuid"] for a in first["Attribute"]] == [a["uuid"] for a in again["Attribute"]]
    assert len({a["uuid"] for a in first["Attribute"]}) == len(EVERY_OBSERVABLE_TYPE)


def test_outsider_gets_the_anonymized_copy_and_nothing_of_the_source(client, sharing_community, headers):
    community = sharing_community
    report = report_for(
        community.bank_a_reporter,
        anonymized_copy_consent=True,
        observables=[("ipv4-addr", "203.0.113.7"), ("domain-name", "evil.example.com")],
    )
    copy = anonymized_copy_for(
        community.nisc_coordinator, report, observables=[ObservableInput("ipv4-addr", "203.0.113.7")]
    )
    outsider = headers(community.hospital_reporter)
    missing = client.get(f"/api/v1/reports/{uuid.uuid4()}/misp", headers=outsider)
    assert missing.status_code == 404
    forbidden = client.get(f"/api/v1/reports/{report.pk}/misp", headers=outsider)
    assert (forbidden.status_code, forbidden.content) == (404, missing.content)
    beyond_the_audience = client.get(f"/api/v1/reports/{copy.pk}/misp", headers=headers(community.citizen))
    assert (beyond_the_audience.status_code, beyond_the_audience.content) == (404, missing.content)

    event = export(client, f"/api/v1/reports/{copy.pk}/misp", outsider)

    misp_event = load(event)
    assert (misp_event.info, misp_event.distribution) == (copy.title, 2)
    assert "tlp:green" in [tag.name for tag in misp_event.tags]
    assert types_and_values(misp_event) == {("ip-dst", "203.0.113.7")}
    assert "Orgc" not in event["Event"]
    original = export(client, f"/api/v1/reports/{report.pk}/misp", headers(community.bank_a_reporter))
    text = json.dumps(event, ensure_ascii=False)
    reporter = community.bank_a_reporter
    for secret in (
        "さくら銀行",
        "Sakura Bank",
        reporter.username,
        reporter.email,
        str(report.pk),
        report.title,
        original["Event"]["uuid"],
        original["Event"]["Orgc"]["uuid"],
        original["Event"]["timestamp"],
        *(a["uuid"] for a in original["Event"]["Attribute"]),
    ):
        assert secret not in text
    # Dated to the day, like the copy's own page: midnight in Japan, no time that could match the original's.
    assert int(event["Event"]["timestamp"]) % 3600 == 0


def test_advisory_event_carries_its_severity_and_reaches_only_its_audience(client, community, headers):
    advisory = advisory_for(
        community.nisc_coordinator,
        tlp=Tlp.AMBER_STRICT,
        organizations=[community.bank_a],
        observables=[
            ObservableInput("domain-name", "evil.example.com"),
            ObservableInput("url", EVERY_OBSERVABLE_TYPE[3][1]),
        ],
    )
    url = f"/api/v1/advisories/{advisory.pk}/misp"

    misp_event = load(export(client, url, headers(community.bank_a_reporter)))

    assert (misp_event.info, misp_event.distribution, misp_event.threat_level_id) == (advisory.title, 0, 1)
    assert misp_event.Orgc.name == advisory.issuer.name_ja
    assert [tag.name for tag in misp_event.tags] == ["tlp:amber+strict", 'renkei:severity="high"']
    assert types_and_values(misp_event) == {
        ("domain", "evil.example.com"),
        ("url", EVERY_OBSERVABLE_TYPE[3][1]),
    }
    assert misp_event.event_reports[0].content == advisory.body
    outsider = headers(community.hospital_reporter)
    missing = client.get(f"/api/v1/advisories/{uuid.uuid4()}/misp", headers=outsider)
    response = client.get(url, headers=outsider)
    assert (response.status_code, response.content) == (404, missing.content)


@pytest.mark.parametrize("tlp", list(Tlp))
def test_every_label_becomes_its_taxonomy_tag_and_distribution_level(client, community, headers, tlp):
    report = report_for(
        community.bank_a_reporter,
        tlp=tlp,
        recipients=[community.fsa_coordinator] if tlp == Tlp.RED else [],
        narrative="",
        observables=[("ipv4-addr", "198.51.100.0/24")],
    )

    event = export(client, f"/api/v1/reports/{report.pk}/misp", headers(community.bank_a_reporter))

    misp_event = load(event)
    distribution, tag = DISTRIBUTIONS[tlp]
    assert misp_event.distribution == distribution
    assert misp_event.tags[0].name == tag
    assert types_and_values(misp_event) == {("ip-dst", "198.51.100.0/24")}
    assert "EventReport" not in event["Event"]
