"""STIX 2.1 export: a report, an anonymized copy or an advisory as one bundle of plain dicts.

Ids are uuid5 over a fixed Renkei namespace and our primary keys, so exporting again gives the same
ids; cyber-observables take STIX's own namespace over their value (STIX 2.1 §2.9), so they match
anyone else's. Callers pass only objects the reader may see: the access function decides, not this
module. An anonymized copy is exported from its own fields alone, so nothing in its bundle names the
reporting organization or derives from the original's ids or precise times.
"""

import datetime as dt
import json
import uuid

from django.db.models import Prefetch
from django.http import HttpResponse
from django.utils import timezone

from renkei.directory.choices import OrganizationType
from renkei.directory.models import Organization, Sector
from renkei.sharing.choices import ObservableType, Tlp
from renkei.sharing.models import Advisory, AnonymizedReport, Report, ReportVersion

MEDIA_TYPE = "application/stix+json;version=2.1"
RENKEI_NAMESPACE = uuid.UUID("62029d26-58a6-4784-ad95-abc9a74f2890")
SCO_NAMESPACE = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")

TLP_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP_MARKING_IDS = {
    Tlp.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    Tlp.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    Tlp.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    Tlp.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    Tlp.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

# From the widest audience to the narrowest.
TLP_RESTRICTION = {
    TLP_MARKING_IDS[tlp]: rank
    for rank, tlp in enumerate((Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED))
}
# What `report_bundle` reads of each report, fetched for many reports at once.
REPORT_BUNDLE_PREFETCH = (
    Prefetch("versions", queryset=ReportVersion.objects.prefetch_related("observables")),
    "organization__sectors",
)
# A search exports at most this many reports in one bundle.
SEARCH_EXPORT_LIMIT = 500

# Our sector codes in STIX's industry-sector-ov. Sectors an administrator adds later fall back to
# "infrastructure": every Renkei sector is critical infrastructure.
INDUSTRY_SECTORS = {
    "info_comm": "telecommunications",
    "finance": "financial-services",
    "aviation": "transportation",
    "airport": "transportation",
    "railway": "transportation",
    "electricity": "energy",
    "gas": "energy",
    "government": "government",
    "medical": "healthcare",
    "water": "infrastructure-water",
    "logistics": "transportation",
    "chemical": "chemical",
    "credit": "financial-services",
    "petroleum": "energy",
    "port": "transportation",
}
GOVERNMENT_TYPES = {OrganizationType.NATIONAL_CENTER, OrganizationType.SECTOR_MINISTRY}
# Sectors carry no timestamps; a fixed one keeps each sector's identity a single STIX version.
SECTOR_IDENTITY_TIME = "2026-01-01T00:00:00.000Z"

AUTHORED_TYPES = {"report", "incident", "indicator", "observed-data"}

# Observable type → the object path its indicator pattern compares.
PATTERN_PATHS = {
    ObservableType.IPV4: "ipv4-addr:value",
    ObservableType.IPV6: "ipv6-addr:value",
    ObservableType.DOMAIN: "domain-name:value",
    ObservableType.URL: "url:value",
    ObservableType.EMAIL: "email-addr:value",
    ObservableType.MAC: "mac-addr:value",
    ObservableType.ASN: "autonomous-system:number",
    ObservableType.MD5: "file:hashes.'MD5'",
    ObservableType.SHA1: "file:hashes.'SHA-1'",
    ObservableType.SHA256: "file:hashes.'SHA-256'",
}


def stix_id(stix_type: str, *key) -> str:
    """A stable id for a Renkei object: the same key always gives the same id."""
    return f"{stix_type}--{uuid.uuid5(RENKEI_NAMESPACE, '/'.join(map(str, (stix_type, *key))))}"


def timestamp(value: dt.datetime) -> str:
    """STIX form: UTC with millisecond precision and a `Z`."""
    utc = value.astimezone(dt.UTC).isoformat(timespec="milliseconds")
    return utc.removesuffix("+00:00") + "Z"


def day_start(day: dt.date) -> dt.datetime:
    """Midnight in Japan time: copies are dated to the day only, as their API shows them."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_default_timezone())


def marking_definition(tlp: str) -> dict:
    """The official TLP 2.0 marking definition (OASIS cti-stix-common-objects, tlp-2.0)."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP_MARKING_IDS[tlp],
        "created": "2022-10-01T00:00:00.000Z",
        "name": f"TLP:{tlp}",
        "extensions": {TLP_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": tlp.lower()}},
    }


def quote_pattern_string(value: str) -> str:
    """A STIX pattern string literal: quoted, with backslashes and quotes escaped."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def pattern(observable_type: str, value: str) -> str:
    path = PATTERN_PATHS[observable_type]
    literal = value if observable_type == ObservableType.ASN else quote_pattern_string(value)
    return f"[{path} = {literal}]"


def cyber_observable(observable_type: str, value: str, marking: str) -> dict:
    """The cyber-observable an observable describes, with its deterministic STIX id."""
    if observable_type == ObservableType.ASN:
        stix_type, properties = "autonomous-system", {"number": int(value)}
    elif observable_type.startswith("file:hashes."):
        stix_type, properties = "file", {"hashes": {observable_type.removeprefix("file:hashes."): value}}
    else:
        stix_type, properties = observable_type, {"value": value}
    canonical = json.dumps(properties, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return {
        "type": stix_type,
        "spec_version": "2.1",
        "id": f"{stix_type}--{uuid.uuid5(SCO_NAMESPACE, canonical)}",
        **properties,
        "object_marking_refs": [marking],
    }


def _common(stix_type: str, object_id: str, created: dt.datetime, modified: dt.datetime, marking: str):
    return {
        "type": stix_type,
        "spec_version": "2.1",
        "id": object_id,
        "created": timestamp(created),
        "modified": timestamp(max(created, modified)),
        "object_marking_refs": [marking],
    }


def sector_identity(sector: Sector, marking: str) -> dict:
    """A sector as the class of organizations in it."""
    identity = {
        "type": "identity",
        "spec_version": "2.1",
        "id": stix_id("identity", "sector", sector.pk),
        "created": SECTOR_IDENTITY_TIME,
        "modified": SECTOR_IDENTITY_TIME,
        "name": sector.name_ja,
        "identity_class": "class",
        "sectors": [INDUSTRY_SECTORS.get(sector.code, "infrastructure")],
        "object_marking_refs": [marking],
    }
    if sector.name_en:
        identity["description"] = sector.name_en
    return identity


def organization_identity(organization: Organization, marking: str) -> dict:
    identity = _common(
        "identity",
        stix_id("identity", "organization", organization.pk),
        organization.created_at,
        organization.created_at,
        marking,
    ) | {"name": organization.name_ja, "identity_class": "organization"}
    if organization.name_en:
        identity["description"] = organization.name_en
    sectors = {INDUSTRY_SECTORS.get(sector.code, "infrastructure") for sector in organization.sectors.all()}
    if organization.type in GOVERNMENT_TYPES:
        sectors.add("government-national")
    if sectors:
        identity["sectors"] = sorted(sectors)
    return identity


def _indicator(container: tuple, source: str, observable: tuple[str, str], since: dt.datetime, marking: str):
    """An indicator for one observable; `source` (the title of what it came from) describes it."""
    observable_type, value = observable
    indicator = _common(
        "indicator", stix_id("indicator", *container, observable_type, value), since, since, marking
    )
    return indicator | {
        "name": value,
        "description": source,
        "pattern": pattern(observable_type, value),
        "pattern_type": "stix",
        "valid_from": timestamp(since),
    }


def _observed_data(container: tuple, observables: list, first: dt.datetime, last: dt.datetime, marking: str):
    """The observables as seen, with their cyber-observables; nothing when there are none."""
    scos = list({sco["id"]: sco for sco in (cyber_observable(*o, marking) for o in observables)}.values())
    if not scos:
        return []
    observed = _common("observed-data", stix_id("observed-data", *container), last, last, marking) | {
        "first_observed": timestamp(first),
        "last_observed": timestamp(max(first, last)),
        "number_observed": 1,
        "object_refs": [sco["id"] for sco in scos],
    }
    return [observed, *scos]


def _with_creator(objects: list[dict], creator: dict) -> list[dict]:
    """`created_by_ref` on what the organization wrote; sectors and cyber-observables are not theirs."""
    return [
        obj | {"created_by_ref": creator["id"]} if obj["type"] in AUTHORED_TYPES else obj for obj in objects
    ]


def _bundle(container: tuple, tlp: str, objects: list[dict]) -> dict:
    return {
        "type": "bundle",
        "id": stix_id("bundle", *container),
        "objects": [marking_definition(tlp), *objects],
    }


def _incident_and_report(
    container: tuple,
    *,
    title: str,
    description: str,
    labels: list[str],
    created: dt.datetime,
    modified: dt.datetime,
    marking: str,
    contents: list[dict],
) -> list[dict]:
    """An incident, and the report that gathers it with everything else in the bundle."""
    text = {"name": title} | ({"description": description} if description else {})
    incident = _common("incident", stix_id("incident", *container), created, modified, marking) | text
    incident["labels"] = labels
    report = (
        _common("report", stix_id("report", *container), created, modified, marking)
        | text
        | {
            "published": timestamp(created),
            "object_refs": [incident["id"]] + [obj["id"] for obj in contents],
        }
    )
    return [report, incident, *contents]


def report_bundle(report: Report) -> dict:
    """A report as its reporting organization and the chain see it: incident, report, indicators,
    observed data, the organization's and the sector's identities."""
    container = ("report", report.pk)
    marking = TLP_MARKING_IDS[report.tlp]
    versions = sorted(report.versions.all(), key=lambda version: version.number)
    first_seen: dict[tuple[str, str], dt.datetime] = {}
    for version in versions:
        for observable in version.observables.all():
            first_seen.setdefault((observable.type, observable.value), version.created_at)
    organization = organization_identity(report.organization, marking)
    earliest = min(filter(None, (report.occurred_at, report.detected_at)))
    contents = [
        *(_indicator(container, report.title, key, since, marking) for key, since in first_seen.items()),
        *_observed_data(container, list(first_seen), earliest, versions[-1].created_at, marking),
        sector_identity(report.sector, marking),
        organization,
    ]
    objects = _incident_and_report(
        container,
        title=report.title,
        description=report.narrative,
        labels=[f"kind:{report.kind}", f"cause:{report.cause.code}"],
        created=report.created_at,
        modified=report.updated_at,
        marking=marking,
        contents=contents,
    )
    return _bundle(container, report.tlp, _with_creator(objects, organization))


def anonymized_report_bundle(copy: AnonymizedReport) -> dict:
    """An anonymized copy, from its own fields only: no organization, no creator, dates to the day."""
    container = ("anonymized-report", copy.pk)
    marking = TLP_MARKING_IDS[copy.tlp]
    published = day_start(timezone.localdate(copy.created_at, timezone.get_default_timezone()))
    occurred = day_start(copy.occurred_month) if copy.occurred_month else published
    observables = [(o.type, o.value) for o in copy.observables.all()]
    contents = [
        *(_indicator(container, copy.title, o, published, marking) for o in observables),
        *_observed_data(container, observables, min(occurred, published), published, marking),
    ]
    if copy.sector_id:
        contents.append(sector_identity(copy.sector, marking))
    objects = _incident_and_report(
        container,
        title=copy.title,
        description=copy.narrative,
        labels=[f"kind:{copy.kind}", f"cause:{copy.cause.code}"],
        created=published,
        modified=published,
        marking=marking,
        contents=contents,
    )
    return _bundle(container, copy.tlp, objects)


def advisory_bundle(advisory: Advisory) -> dict:
    """An advisory as a threat report from its issuer, with its indicators."""
    container = ("advisory", advisory.pk)
    marking = TLP_MARKING_IDS[advisory.tlp]
    issuer = organization_identity(advisory.issuer, marking)
    indicators = [
        _indicator(container, advisory.title, (o.type, o.value), advisory.created_at, marking)
        for o in advisory.observables.all()
    ]
    report = _common(
        "report", stix_id("report", *container), advisory.created_at, advisory.created_at, marking
    ) | {
        "name": advisory.title,
        "description": advisory.body,
        "report_types": ["threat-report"],
        "labels": [f"severity:{advisory.severity}"],
        "published": timestamp(advisory.created_at),
        "object_refs": [obj["id"] for obj in (*indicators, issuer)],
    }
    return _bundle(container, advisory.tlp, [*_with_creator([report, *indicators], issuer), issuer])


def reports_bundle(reports: list[Report]) -> dict:
    """The reports a search found, in one bundle. What several of them share (the marking
    definitions, an organization's or a sector's identity, a cyber-observable) appears once, marked
    with the most restrictive label among the reports that carry it."""
    objects: dict[str, dict] = {}
    for report in reports:
        for obj in report_bundle(report)["objects"]:
            kept = objects.get(obj["id"])
            if kept is None or _restriction(obj) > _restriction(kept):
                objects[obj["id"]] = obj
    # A search is a moment's answer, not a Renkei object: its bundle gets a fresh id.
    bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}"}
    if objects:  # STIX 2.1 allows no empty list of objects
        bundle["objects"] = list(objects.values())
    return bundle


def _restriction(obj: dict) -> int:
    return max((TLP_RESTRICTION[ref] for ref in obj.get("object_marking_refs", [])), default=-1)


def bundle_response(bundle: dict) -> HttpResponse:
    return HttpResponse(json.dumps(bundle, ensure_ascii=False), content_type=MEDIA_TYPE)
