"""STIX 2.1 export: bundles pass the OASIS validator, carry the official TLP 2.0 markings, keep their
ids from one export to the next, and an anonymized copy never gives away its source."""

import json
import uuid

import pytest
from stix2validator import ValidationOptions, validate_instance, validate_string

from renkei.sharing.choices import Tlp
from renkei.sharing.services import ObservableInput
from renkei.sharing.stix import MEDIA_TYPE, TLP_MARKING_IDS, marking_definition, pattern, stix_id
from renkei.sharing.tests.factories import (
    EVERY_OBSERVABLE_TYPE,
    advisory_for,
    anonymized_copy_for,
    report_for,
)

# What DOMAIN.md lists, spelled out again so that a typo in the code cannot hide in both places.
OFFICIAL_TLP_IDS = {
    "CLEAR": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "GREEN": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "AMBER": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "AMBER+STRICT": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "RED": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
EXPECTED_PATTERNS = {
    "[ipv4-addr:value = '203.0.113.7']",
    "[ipv6-addr:value = '2001:db8::1']",
    "[domain-name:value = 'evil.example.com']",
    "[url:value = 'https://evil.example.com/login?next=it\\'s']",
    "[email-addr:value = 'phish@evil.example.com']",
    "[mac-addr:value = '00:1a:2b:3c:4d:5e']",
    "[autonomous-system:number = 64496]",
    "[file:hashes.'MD5' = 'd41d8cd98f00b204e9800998ecf8427e']",
    "[file:hashes.'SHA-1' = 'da39a3ee5e6b4b0d3255bfef95601890afd80709']",
    "[file:hashes.'SHA-256' = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']",
}
OPTIONS = ValidationOptions(version="2.1")


def export(client, url, auth) -> dict:
    response = client.get(url, headers=auth)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == MEDIA_TYPE
    assert_valid(response.content.decode())
    return response.json()


def assert_valid(text: str) -> None:
    """No errors, and no warnings but one: ids are uuid5 on purpose (stable from one export to the
    next), where STIX 2.1 recommends uuid4 for domain objects (check 103)."""
    results = validate_string(text, OPTIONS)
    assert results.is_valid, [str(error) for error in results.errors]
    warnings = [str(warning) for warning in results.warnings or []]
    assert [warning for warning in warnings if "{103}" not in warning] == []


def by_type(bundle: dict, stix_type: str) -> list[dict]:
    return [obj for obj in bundle["objects"] if obj["type"] == stix_type]


def assert_marked(bundle: dict, tlp: str) -> None:
    official = OFFICIAL_TLP_IDS[tlp]
    assert by_type(bundle, "marking-definition") == [marking_definition(tlp)]
    assert marking_definition(tlp)["id"] == official
    assert all(
        obj["object_marking_refs"] == [official]
        for obj in bundle["objects"]
        if obj["type"] != "marking-definition"
    )


def test_report_bundle_is_valid_stix_with_incident_report_indicators_and_identities(
    client, community, headers, report_with_every_observable_type
):
    bundle = export(
        client,
        f"/api/v1/reports/{report_with_every_observable_type.pk}/stix",
        headers(community.fsa_coordinator),
    )

    assert_marked(bundle, "AMBER")
    [report] = by_type(bundle, "report")
    [incident] = by_type(bundle, "incident")
    assert report["name"] == incident["name"] == report_with_every_observable_type.title
    assert incident["labels"] == ["kind:failure", "cause:intentional.intrusion"]
    others = {obj["id"] for obj in bundle["objects"] if obj["type"] not in ("report", "marking-definition")}
    assert set(report["object_refs"]) == others
    assert {i["pattern"] for i in by_type(bundle, "indicator")} == EXPECTED_PATTERNS
    [observed] = by_type(bundle, "observed-data")
    assert len(observed["object_refs"]) == len(EVERY_OBSERVABLE_TYPE)
    assert {"ipv4-addr", "autonomous-system", "file"} <= {
        ref.split("--")[0] for ref in observed["object_refs"]
    }
    identities = {i["identity_class"]: i for i in by_type(bundle, "identity")}
    assert identities["organization"]["name"] == "さくら銀行"
    assert identities["organization"]["sectors"] == ["financial-services"]
    assert identities["class"]["sectors"] == ["financial-services"]
    authored = [*by_type(bundle, "report"), incident, observed, *by_type(bundle, "indicator")]
    assert {obj["created_by_ref"] for obj in authored} == {identities["organization"]["id"]}
    assert incident["created"].endswith("Z") and len(incident["created"]) == len("2026-04-01T00:00:00.000Z")


def test_reexport_gives_the_same_ids(client, community, headers, report_with_every_observable_type):
    url = f"/api/v1/reports/{report_with_every_observable_type.pk}/stix"
    first = export(client, url, headers(community.bank_a_reporter))
    again = export(client, url, headers(community.nisc_coordinator))
    assert [obj["id"] for obj in first["objects"]] == [obj["id"] for obj in again["objects"]]
    assert first["id"] == again["id"]


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
    missing = client.get(f"/api/v1/reports/{uuid.uuid4()}/stix", headers=outsider)
    forbidden = client.get(f"/api/v1/reports/{report.pk}/stix", headers=outsider)
    assert (forbidden.status_code, forbidden.content) == (404, missing.content)
    beyond_the_audience = client.get(f"/api/v1/reports/{copy.pk}/stix", headers=headers(community.citizen))
    assert (beyond_the_audience.status_code, beyond_the_audience.content) == (404, missing.content)

    bundle = export(client, f"/api/v1/reports/{copy.pk}/stix", outsider)

    assert_marked(bundle, "GREEN")
    [incident] = by_type(bundle, "incident")
    assert (incident["name"], incident["description"]) == (copy.title, copy.narrative)
    assert [i["pattern"] for i in by_type(bundle, "indicator")] == ["[ipv4-addr:value = '203.0.113.7']"]
    assert [i["identity_class"] for i in by_type(bundle, "identity")] == ["class"]
    assert all("created_by_ref" not in obj for obj in bundle["objects"])
    text = json.dumps(bundle, ensure_ascii=False)
    original = client.get(f"/api/v1/reports/{report.pk}/stix", headers=headers(community.bank_a_reporter))
    source_ids = {obj["id"] for obj in original.json()["objects"]} - {
        obj["id"]
        for obj in bundle["objects"]
        if obj["type"] in ("marking-definition", "ipv4-addr", "identity")
    }
    for secret in (
        "さくら銀行",
        "Sakura Bank",
        "bank_a_reporter",
        str(report.pk),
        report.title,
        stix_id("identity", "organization", community.bank_a.pk),
        *source_ids,
    ):
        assert secret not in text
    # Dated to the day, like the copy's own page: no time of day that could match the original's.
    assert incident["created"].endswith(":00:00.000Z")


def test_advisory_bundle_is_valid_and_reaches_only_its_audience(client, community, headers):
    advisory = advisory_for(
        community.nisc_coordinator,
        tlp=Tlp.AMBER_STRICT,
        organizations=[community.bank_a],
        observables=[
            ObservableInput("domain-name", "evil.example.com"),
            ObservableInput("url", EVERY_OBSERVABLE_TYPE[3][1]),
        ],
    )
    url = f"/api/v1/advisories/{advisory.pk}/stix"

    bundle = export(client, url, headers(community.bank_a_reporter))

    assert_marked(bundle, "AMBER+STRICT")
    [report] = by_type(bundle, "report")
    [issuer] = by_type(bundle, "identity")
    assert (report["name"], report["description"]) == (advisory.title, advisory.body)
    assert report["created_by_ref"] == issuer["id"]
    assert issuer["sectors"] == ["government-national"]
    assert {i["pattern"] for i in by_type(bundle, "indicator")} == {
        "[domain-name:value = 'evil.example.com']",
        "[url:value = 'https://evil.example.com/login?next=it\\'s']",
    }
    outsider = headers(community.hospital_reporter)
    missing = client.get(f"/api/v1/advisories/{uuid.uuid4()}/stix", headers=outsider)
    response = client.get(url, headers=outsider)
    assert (response.status_code, response.content) == (404, missing.content)


@pytest.mark.parametrize("tlp", list(Tlp))
def test_every_label_exports_valid_with_its_official_marking(client, community, headers, tlp):
    report = report_for(
        community.bank_a_reporter,
        tlp=tlp,
        recipients=[community.fsa_coordinator] if tlp == Tlp.RED else [],
        narrative="",
        observables=[("ipv4-addr", "198.51.100.0/24")],
    )

    bundle = export(client, f"/api/v1/reports/{report.pk}/stix", headers(community.bank_a_reporter))

    assert_marked(bundle, tlp)
    assert "description" not in by_type(bundle, "incident")[0]
    assert by_type(bundle, "indicator")[0]["pattern"] == "[ipv4-addr:value = '198.51.100.0/24']"


@pytest.mark.parametrize("tlp", list(Tlp))
def test_every_label_has_the_official_marking_definition(tlp):
    definition = marking_definition(tlp)
    assert definition["id"] == TLP_MARKING_IDS[tlp] == OFFICIAL_TLP_IDS[tlp]
    assert definition["extensions"]["extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"] == {
        "extension_type": "property-extension",
        "tlp_2_0": tlp.lower(),
    }
    assert validate_instance(definition, OPTIONS).is_valid


def test_pattern_strings_escape_quotes_and_backslashes():
    assert pattern("url", "http://x.example/a'b\\c") == "[url:value = 'http://x.example/a\\'b\\\\c']"


def incident_ids(bundle: dict) -> set[str]:
    return {obj["id"] for obj in bundle.get("objects", []) if obj["type"] == "incident"}


def test_a_search_exports_what_it_finds_that_the_reader_may_see_as_one_bundle(client, community, headers):
    amber = report_for(community.bank_a_reporter, observables=[("ipv4-addr", "203.0.113.7")])
    green = report_for(community.bank_a_reporter, tlp=Tlp.GREEN, observables=[("ipv4-addr", "203.0.113.7")])
    hospital = report_for(community.hospital_reporter)  # medical: not the finance ministry's

    bundle = export(client, "/api/v1/reports/stix?sector=finance", headers(community.fsa_coordinator))

    assert incident_ids(bundle) == {stix_id("incident", "report", r.pk) for r in (amber, green)}
    ids = [obj["id"] for obj in bundle["objects"]]
    assert len(ids) == len(set(ids)), "shared objects appear once"
    assert {m["id"] for m in by_type(bundle, "marking-definition")} == {
        OFFICIAL_TLP_IDS["AMBER"],
        OFFICIAL_TLP_IDS["GREEN"],
    }
    [bank] = [i for i in by_type(bundle, "identity") if i["identity_class"] == "organization"]
    assert bank["object_marking_refs"] == [OFFICIAL_TLP_IDS["AMBER"]], "the narrower label wins"
    assert incident_ids(export(client, "/api/v1/reports/stix", headers(community.hospital_reporter))) == {
        stix_id("incident", "report", hospital.pk)
    }


def test_a_search_that_finds_nothing_is_a_bundle_without_objects(client, community, headers):
    report_for(community.bank_a_reporter)
    bundle = export(client, "/api/v1/reports/stix?q=存在しない語", headers(community.fsa_coordinator))
    assert "objects" not in bundle


def test_a_search_that_finds_too_many_reports_asks_to_narrow_it(client, community, headers, monkeypatch):
    monkeypatch.setattr("renkei.sharing.api.SEARCH_EXPORT_LIMIT", 1)
    report_for(community.bank_a_reporter)
    report_for(community.bank_a_reporter)
    response = client.get("/api/v1/reports/stix", headers=headers(community.fsa_coordinator))
    assert response.status_code == 422
    assert response["Content-Type"].startswith("application/problem+json")
    assert [p["name"] for p in response.json()["invalid_params"]] == ["q"]
