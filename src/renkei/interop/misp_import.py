"""MISP event import: an event in the JSON form PyMISP writes becomes STIX objects in a collection.

The event becomes a `report` (id `report--<event uuid>`) whose `object_refs` are one `indicator` per
attribute (id `indicator--<attribute uuid>`), so importing the event again stores nothing twice, and
an attribute changed in MISP (a newer `timestamp`) supersedes its earlier version.

Labels. The event's label is the narrowest of its `tlp:*` tag and its distribution level, read as
TLP 2.0 reads sharing: 0 "your organisation only" as AMBER+STRICT, 1 "this community only" as
AMBER, 2 "connected communities" as GREEN, 3 "all communities" as CLEAR, and 4 (a sharing group,
which Renkei does not know) as AMBER+STRICT. An event with neither is AMBER, Renkei's default.
Objects take the label of the collection they go into, which may be as narrow as the event's or
narrower, never wider: an event is refused rather than shared further than its source allowed.
Export (sharing/misp.py) maps the other way: RED and AMBER+STRICT to 0, AMBER to 1, GREEN to 2,
CLEAR to 3.
"""

import datetime as dt
import ipaddress
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from renkei.interop.models import Collection, IngestStatus
from renkei.interop.services import MAX_BUNDLE_BYTES, Failure, ingest
from renkei.interop.stix_validation import BundleRejected, check_objects, load_document
from renkei.sharing.choices import TLP_ORDER, ObservableType, Tlp
from renkei.sharing.observables import normalize_observable
from renkei.sharing.stix import TLP_MARKING_IDS, marking_definition, pattern, timestamp

DISTRIBUTION_LABELS = {
    "0": Tlp.AMBER_STRICT,
    "1": Tlp.AMBER,
    "2": Tlp.GREEN,
    "3": Tlp.CLEAR,
    "4": Tlp.AMBER_STRICT,
}
TAG_LABELS = {f"tlp:{tlp.lower()}": tlp for tlp in Tlp} | {"tlp:white": Tlp.CLEAR}

# MISP attribute type → observable type; `None` means "IPv4 or IPv6, by the value".
ATTRIBUTE_OBSERVABLES = {
    "ip-src": None,
    "ip-dst": None,
    "domain": ObservableType.DOMAIN,
    "hostname": ObservableType.DOMAIN,
    "url": ObservableType.URL,
    "link": ObservableType.URL,
    "email": ObservableType.EMAIL,
    "email-src": ObservableType.EMAIL,
    "email-dst": ObservableType.EMAIL,
    "mac-address": ObservableType.MAC,
    "AS": ObservableType.ASN,
    "md5": ObservableType.MD5,
    "sha1": ObservableType.SHA1,
    "sha256": ObservableType.SHA256,
}
# Composite types (`ip-dst|port`, `filename|sha256`): the part that is the observable.
COMPOSITE_PARTS = {
    "ip-src|port": (0, None),
    "ip-dst|port": (0, None),
    "filename|md5": (1, ObservableType.MD5),
    "filename|sha1": (1, ObservableType.SHA1),
    "filename|sha256": (1, ObservableType.SHA256),
}


@dataclass
class Conversion:
    label: str
    objects: list[dict] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


def event_label(event: dict) -> str:
    """The narrowest of the event's TLP tag and its distribution level (see the module docstring)."""
    labels = [TAG_LABELS[tag] for tag in _tag_names(event) if tag in TAG_LABELS]
    distribution = str(event.get("distribution", ""))
    if distribution in DISTRIBUTION_LABELS:
        labels.append(DISTRIBUTION_LABELS[distribution])
    return max(labels, key=TLP_ORDER.index) if labels else Tlp.AMBER


def _tag_names(event: dict) -> list[str]:
    tags = event.get("Tag") or []
    return [str(tag.get("name", "")).strip().lower() for tag in tags if isinstance(tag, dict)]


def _moment(epoch) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _day(event: dict) -> dt.datetime | None:
    try:
        return dt.datetime.combine(dt.date.fromisoformat(str(event.get("date"))), dt.time.min, tzinfo=dt.UTC)
    except ValueError:
        return None


def _observable(attribute: dict) -> tuple[str, str]:
    """(observable type, normalized value) of an attribute; ValidationError when it has none."""
    misp_type = str(attribute.get("type", ""))
    value = str(attribute.get("value", "")).strip()
    if misp_type in COMPOSITE_PARTS:
        index, observable_type = COMPOSITE_PARTS[misp_type]
        parts = value.split("|")
        if len(parts) != 2:
            raise ValidationError(_("a %(type)s value has two parts separated by |") % {"type": misp_type})
        value = parts[index]
    elif misp_type in ATTRIBUTE_OBSERVABLES:
        observable_type = ATTRIBUTE_OBSERVABLES[misp_type]
    else:
        raise ValidationError(_("attribute type %(type)s has no STIX indicator here") % {"type": misp_type})
    if observable_type is None:
        try:
            version = ipaddress.ip_address(value).version
        except ValueError:
            raise ValidationError(_("%(value)s is not an IP address") % {"value": value}) from None
        observable_type = ObservableType.IPV4 if version == 4 else ObservableType.IPV6
    return observable_type, normalize_observable(observable_type, value)


def convert_event(document: dict) -> Conversion:
    """The STIX objects of one MISP event, and one failure per attribute that has none."""
    event = document.get("Event", document) if isinstance(document, dict) else None
    if not isinstance(event, dict) or "uuid" not in event:
        raise BundleRejected(_("not a MISP event: expected an object with an Event holding a uuid"))
    label = event_label(event)
    marking = TLP_MARKING_IDS[label]
    event_time = _moment(event.get("timestamp")) or _moment(event.get("publish_timestamp")) or _day(event)
    if event_time is None:
        raise BundleRejected(_("the event has neither a readable timestamp nor a date"))
    conversion = Conversion(label=label, objects=[marking_definition(label)])
    indicators = []
    for attribute in event.get("Attribute") or []:
        if not isinstance(attribute, dict):
            conversion.failures.append(Failure(None, None, _("an attribute must be an object")))
            continue
        indicator_id = f"indicator--{attribute.get('uuid', '')}"
        changed = _moment(attribute.get("timestamp")) or event_time
        try:
            observable_type, value = _observable(attribute)
        except ValidationError as error:
            conversion.failures.append(Failure(indicator_id, timestamp(changed), " ".join(error.messages)))
            continue
        created = min(changed, event_time)
        indicators.append(
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": indicator_id,
                "created": timestamp(created),
                "modified": timestamp(changed),
                "name": value,
                "description": str(attribute.get("comment") or ""),
                "pattern": pattern(observable_type, value),
                "pattern_type": "stix",
                "valid_from": timestamp(created),
                "indicator_types": ["malicious-activity"],
                "object_marking_refs": [marking],
                "x_misp_type": str(attribute.get("type")),
                "x_misp_category": str(attribute.get("category", "")),
                "x_misp_to_ids": bool(attribute.get("to_ids", False)),
            }
        )
    for indicator in indicators:
        if not indicator["description"]:
            del indicator["description"]
    conversion.objects += indicators
    conversion.objects.append(_report(event, event_time, marking, [item["id"] for item in indicators]))
    return conversion


def _report(event: dict, event_time: dt.datetime, marking: str, refs: list[str]) -> dict:
    published = _moment(event.get("publish_timestamp")) or event_time
    narrative = "\n\n".join(
        str(item.get("content", "")) for item in event.get("EventReport") or [] if isinstance(item, dict)
    )
    report = {
        "type": "report",
        "spec_version": "2.1",
        "id": f"report--{event['uuid']}",
        "created": timestamp(min(published, event_time)),
        "modified": timestamp(event_time),
        "name": str(event.get("info") or event["uuid"]),
        "published": timestamp(published),
        "report_types": ["threat-report"],
        "object_refs": refs,
        "object_marking_refs": [marking],
        "x_misp_threat_level_id": str(event.get("threat_level_id", "")),
        "x_misp_analysis": str(event.get("analysis", "")),
        "x_misp_distribution": str(event.get("distribution", "")),
    }
    if narrative:
        report["description"] = narrative
    labels = [tag for tag in _tag_names(event) if tag and tag not in TAG_LABELS]
    if labels:
        report["labels"] = labels
    return report


def import_misp_event(collection: Collection, raw: bytes, *, user) -> IngestStatus:
    """Check and store a MISP event. An unreadable event raises BundleRejected; an event labelled
    narrower than the collection raises ValidationError; both write nothing."""
    conversion = convert_event(load_document(raw, max_bytes=MAX_BUNDLE_BYTES, what="event"))
    if TLP_ORDER.index(conversion.label) > TLP_ORDER.index(collection.tlp):
        raise ValidationError(
            _(
                "The event is TLP:%(event)s but the collection is TLP:%(collection)s: choose a "
                "collection labelled TLP:%(event)s or narrower, so the event is not shared further "
                "than its source allowed."
            )
            % {"event": conversion.label, "collection": collection.tlp},
            code="label_too_wide",
        )
    checked = check_objects(conversion.objects)
    failures = conversion.failures + [Failure(*failure) for failure in checked.failures]
    return ingest(collection, checked.objects, failures=failures, user=user)
