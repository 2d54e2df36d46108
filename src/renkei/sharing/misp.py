"""MISP event export: a report, an anonymized copy or an advisory as one MISP event, in the JSON
form PyMISP writes (numbers as strings, `date` as YYYY-MM-DD, `timestamp` as epoch seconds).

Uuids are uuid5 over the STIX export's Renkei namespace, so exporting again gives the same ones.
Callers pass only objects the reader may see: the access function decides, not this module. An
anonymized copy is exported from its own fields alone: no `Orgc`, nothing derived from the
original's ids or precise times.
"""

import datetime as dt
import json
import uuid

from django.http import HttpResponse
from django.utils import timezone

from renkei.directory.models import Organization
from renkei.sharing.choices import ObservableType, ReportStatus, Severity, Tlp
from renkei.sharing.models import Advisory, AnonymizedReport, Report
from renkei.sharing.stix import RENKEI_NAMESPACE, day_start

MEDIA_TYPE = "application/json"

# MISP distribution levels: who a MISP instance may pass the event on to.
YOUR_ORGANISATION_ONLY = "0"
THIS_COMMUNITY_ONLY = "1"
CONNECTED_COMMUNITIES = "2"
ALL_COMMUNITIES = "3"
INHERIT_EVENT = "5"
DISTRIBUTION = {
    Tlp.RED: YOUR_ORGANISATION_ONLY,
    Tlp.AMBER_STRICT: YOUR_ORGANISATION_ONLY,
    Tlp.AMBER: THIS_COMMUNITY_ONLY,
    Tlp.GREEN: CONNECTED_COMMUNITIES,
    Tlp.CLEAR: ALL_COMMUNITIES,
}
# The MISP `tlp` taxonomy's tag names.
TLP_TAGS = {tlp: f"tlp:{tlp.lower()}" for tlp in Tlp}

# MISP analysis levels.
INITIAL, ONGOING, COMPLETED = "0", "1", "2"
ANALYSIS = {
    ReportStatus.OPEN: INITIAL,
    ReportStatus.INVESTIGATING: ONGOING,
    ReportStatus.RESOLVED: COMPLETED,
    ReportStatus.CLOSED: COMPLETED,
}
# MISP threat levels: 1 high, 2 medium, 3 low, 4 undefined. A report carries no assessed severity.
UNDEFINED_THREAT_LEVEL = "4"
THREAT_LEVEL = {
    Severity.CRITICAL: "1",
    Severity.HIGH: "1",
    Severity.MEDIUM: "2",
    Severity.LOW: "3",
    Severity.INFO: UNDEFINED_THREAT_LEVEL,
}

# Observable type → MISP attribute type and the category MISP's describeTypes gives it by default.
ATTRIBUTE_TYPES = {
    ObservableType.IPV4: ("ip-dst", "Network activity"),
    ObservableType.IPV6: ("ip-dst", "Network activity"),
    ObservableType.DOMAIN: ("domain", "Network activity"),
    ObservableType.URL: ("url", "Network activity"),
    ObservableType.EMAIL: ("email-src", "Payload delivery"),
    ObservableType.MAC: ("mac-address", "Network activity"),
    ObservableType.ASN: ("AS", "Network activity"),
    ObservableType.MD5: ("md5", "Payload delivery"),
    ObservableType.SHA1: ("sha1", "Payload delivery"),
    ObservableType.SHA256: ("sha256", "Payload delivery"),
}
# MISP's own defaults: MAC addresses and AS numbers alone are context, not detection signatures.
NOT_FOR_IDS = {ObservableType.MAC, ObservableType.ASN}


def misp_uuid(*key) -> str:
    """A stable uuid for a Renkei object in MISP: the same key always gives the same uuid."""
    return str(uuid.uuid5(RENKEI_NAMESPACE, "/".join(map(str, ("misp", *key)))))


def epoch(value: dt.datetime) -> str:
    return str(int(value.timestamp()))


def attribute(container: tuple, observable: tuple[str, str], since: dt.datetime) -> dict:
    observable_type, value = observable
    misp_type, category = ATTRIBUTE_TYPES[observable_type]
    return {
        "uuid": misp_uuid("attribute", *container, observable_type, value),
        "type": misp_type,
        "category": category,
        "value": value,
        "to_ids": observable_type not in NOT_FOR_IDS,
        "disable_correlation": False,
        "distribution": INHERIT_EVENT,
        "timestamp": epoch(since),
    }


def organization(org: Organization) -> dict:
    return {"uuid": misp_uuid("organization", org.pk), "name": org.name_ja}


def _event(
    container: tuple,
    *,
    title: str,
    text: str,
    tlp: str,
    published: dt.datetime,
    modified: dt.datetime,
    analysis: str,
    threat_level: str,
    tags: list[str],
    attributes: list[dict],
) -> dict:
    event = {
        "uuid": misp_uuid("event", *container),
        "info": title,
        "date": timezone.localdate(published, timezone.get_default_timezone()).isoformat(),
        "timestamp": epoch(max(published, modified)),
        "publish_timestamp": epoch(published),
        "published": True,
        "analysis": analysis,
        "threat_level_id": threat_level,
        "distribution": DISTRIBUTION[tlp],
        "Attribute": attributes,
        "Tag": [{"name": name} for name in (TLP_TAGS[tlp], *tags)],
    }
    if text:
        # The narrative as a MISP event report, MISP's place for free text about an event.
        event["EventReport"] = [
            {
                "uuid": misp_uuid("event-report", *container),
                "name": title,
                "content": text,
                "distribution": INHERIT_EVENT,
                "timestamp": event["timestamp"],
            }
        ]
    return event


def report_event(report: Report) -> dict:
    """A report as its reporting organization and the chain see it; each observable dated by the
    version that first carried it."""
    container = ("report", report.pk)
    first_seen: dict[tuple[str, str], dt.datetime] = {}
    for version in sorted(report.versions.all(), key=lambda version: version.number):
        for observable in version.observables.all():
            first_seen.setdefault((observable.type, observable.value), version.created_at)
    event = _event(
        container,
        title=report.title,
        text=report.narrative,
        tlp=report.tlp,
        published=report.created_at,
        modified=report.updated_at,
        analysis=ANALYSIS[report.status],
        threat_level=UNDEFINED_THREAT_LEVEL,
        tags=[f'renkei:kind="{report.kind}"', f'renkei:cause="{report.cause.code}"'],
        attributes=[attribute(container, key, since) for key, since in first_seen.items()],
    )
    return {"Event": event | {"Orgc": organization(report.organization)}}


def anonymized_report_event(copy: AnonymizedReport) -> dict:
    """An anonymized copy, from its own fields only: no creating organization, dated to the day."""
    container = ("anonymized-report", copy.pk)
    published = day_start(timezone.localdate(copy.created_at, timezone.get_default_timezone()))
    event = _event(
        container,
        title=copy.title,
        text=copy.narrative,
        tlp=copy.tlp,
        published=published,
        modified=published,
        # A copy is a finished digest, and its source's status would tell when the source acted.
        analysis=COMPLETED,
        threat_level=UNDEFINED_THREAT_LEVEL,
        tags=[f'renkei:kind="{copy.kind}"', f'renkei:cause="{copy.cause.code}"'],
        attributes=[attribute(container, (o.type, o.value), published) for o in copy.observables.all()],
    )
    return {"Event": event}


def advisory_event(advisory: Advisory) -> dict:
    """An advisory from its issuer, with its observables as attributes."""
    container = ("advisory", advisory.pk)
    event = _event(
        container,
        title=advisory.title,
        text=advisory.body,
        tlp=advisory.tlp,
        published=advisory.created_at,
        modified=advisory.created_at,
        analysis=COMPLETED,
        threat_level=THREAT_LEVEL[advisory.severity],
        tags=[f'renkei:severity="{advisory.severity}"'],
        attributes=[
            attribute(container, (o.type, o.value), advisory.created_at) for o in advisory.observables.all()
        ],
    )
    return {"Event": event | {"Orgc": organization(advisory.issuer)}}


def event_response(event: dict) -> HttpResponse:
    return HttpResponse(json.dumps(event, ensure_ascii=False), content_type=MEDIA_TYPE)
