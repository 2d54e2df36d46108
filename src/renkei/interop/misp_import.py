"""MISP event import: an event in the JSON form PyMISP writes becomes STIX objects in a collection.

The event becomes a `report` (id `report--<event uuid>`) whose `object_refs` are one `indicator` per
attribute (id `indicator--<attribute uuid>`), the event's own and those inside its MISP objects
(`Object[].Attribute`) alike, so importing the event again stores nothing twice, and an attribute
changed in MISP (a newer `timestamp`) supersedes its earlier version.

Times. The report's version is the event's `timestamp`, else its `publish_timestamp`, else the start
of its `date` (UTC). An event PyMISP wrote before it was saved to a MISP server may have none of
these: it is dated by the import, so each import of it is a new version. An attribute without a
`timestamp` takes the event's time. A time that is given but unreadable refuses the event, or lists
the attribute as a failure.

Labels. The event's label is the narrowest of its `tlp:*` tag and its distribution level, read as
TLP 2.0 reads sharing: 0 "your organisation only" as AMBER+STRICT, 1 "this community only" as
AMBER, 2 "connected communities" as GREEN, 3 "all communities" as CLEAR, and 4 (a sharing group,
which Renkei does not know) as AMBER+STRICT. An event with neither is AMBER, Renkei's default.
An attribute's label is the narrowest of the event's, its own `tlp:*` tag and distribution and,
inside a MISP object, the object's distribution; distribution 5 "inherit event", or none, adds
nothing, so an attribute is never wider than its event. Each STIX object is marked with its label.
Objects take the label of the collection they go into, which may be as narrow as theirs or
narrower, never wider: rather than be shared further than its source allowed, an event is refused
and an attribute is left out and listed as a failure (the rest of its event is imported).
Export (sharing/misp.py) maps the other way: RED and AMBER+STRICT to 0, AMBER to 1, GREEN to 2,
CLEAR to 3, and gives every attribute distribution 5.
"""

import datetime as dt
import ipaddress
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from renkei.interop.models import Collection, IngestStatus
from renkei.interop.services import MAX_BUNDLE_BYTES, Failure, ingest
from renkei.interop.stix_validation import BundleRejected, check_objects, load_document
from renkei.sharing.choices import TLP_ORDER, ObservableType, Tlp, is_narrower, narrowest
from renkei.sharing.observables import normalize_observable
from renkei.sharing.stix import TLP_MARKING_IDS, marking_definition, pattern, timestamp

DISTRIBUTION_LABELS = {
    "0": Tlp.AMBER_STRICT,
    "1": Tlp.AMBER,
    "2": Tlp.GREEN,
    "3": Tlp.CLEAR,
    "4": Tlp.AMBER_STRICT,
    # 5, "inherit event", is left out: it adds nothing to the event's label.
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
    labels = _own_labels(event)
    return narrowest(labels) if labels else Tlp.AMBER


def _own_labels(item: dict) -> list[str]:
    """What the `tlp:*` tags and distribution of an event, object or attribute say, without the event's."""
    labels = [TAG_LABELS[tag] for tag in _tag_names(item) if tag in TAG_LABELS]
    distribution = str(item.get("distribution", ""))
    if distribution in DISTRIBUTION_LABELS:
        labels.append(DISTRIBUTION_LABELS[distribution])
    return labels


def _tag_names(item: dict) -> list[str]:
    tags = item.get("Tag") or []
    return [str(tag.get("name", "")).strip().lower() for tag in tags if isinstance(tag, dict)]


def _moment(epoch) -> dt.datetime | None:
    """Epoch seconds as a time, None when not given; ValueError when unreadable."""
    if epoch in (None, ""):
        return None
    try:
        return dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise ValueError(epoch) from None


def _event_moment(event: dict, field: str) -> dt.datetime | None:
    try:
        return _moment(event.get(field))
    except ValueError:
        raise BundleRejected(
            _("the event's %(field)s is %(value)s, not a number of seconds since 1970-01-01")
            % {"field": field, "value": event[field]}
        ) from None


def _day(event: dict) -> dt.datetime | None:
    day = event.get("date")
    if day in (None, ""):
        return None
    try:
        return dt.datetime.combine(dt.date.fromisoformat(str(day)), dt.time.min, tzinfo=dt.UTC)
    except ValueError:
        raise BundleRejected(
            _("the event's date is %(value)s, not a date written YYYY-MM-DD") % {"value": day}
        ) from None


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


def convert_event(document: dict, *, collection_tlp: str) -> Conversion:
    """The STIX objects of one MISP event going into a collection labelled `collection_tlp`, and one
    failure per attribute that has no indicator or is labelled narrower than the collection."""
    event = document.get("Event", document) if isinstance(document, dict) else None
    if not isinstance(event, dict) or "uuid" not in event:
        raise BundleRejected(_("not a MISP event: expected an object with an Event holding a uuid"))
    label = event_label(event)
    # All three are read first, so that an unreadable one is refused even when another is given.
    changed = _event_moment(event, "timestamp")
    published = _event_moment(event, "publish_timestamp")
    day = _day(event)
    # An event not yet saved to a MISP server may have no time at all: it is new as of this import.
    event_time = changed or published or day or timezone.now()
    conversion = Conversion(label=label)
    entries = [({}, attribute) for attribute in event.get("Attribute") or []]
    for misp_object in event.get("Object") or []:
        if isinstance(misp_object, dict):
            entries += [(misp_object, attribute) for attribute in misp_object.get("Attribute") or []]
        else:
            conversion.failures.append(Failure(None, None, _("a MISP object must be a JSON object")))
    labels = {label}
    indicators = []
    for misp_object, attribute in entries:
        if not isinstance(attribute, dict):
            conversion.failures.append(Failure(None, None, _("an attribute must be an object")))
            continue
        indicator_id = f"indicator--{attribute.get('uuid', '')}"
        try:
            attribute_time = _moment(attribute.get("timestamp")) or event_time
        except ValueError:
            message = _("the attribute's timestamp is %(value)s, not a number of seconds since 1970-01-01")
            failure = Failure(indicator_id, None, message % {"value": attribute["timestamp"]})
            conversion.failures.append(failure)
            continue
        attribute_label = narrowest([label, *_own_labels(misp_object), *_own_labels(attribute)])
        try:
            indicator = _indicator(
                attribute,
                indicator_id,
                label=attribute_label,
                collection_tlp=collection_tlp,
                created=min(attribute_time, event_time),
                modified=attribute_time,
            )
        except ValidationError as error:
            failure = Failure(indicator_id, timestamp(attribute_time), " ".join(error.messages))
            conversion.failures.append(failure)
            continue
        labels.add(attribute_label)
        indicators.append(indicator)
    conversion.objects = [marking_definition(tlp) for tlp in TLP_ORDER if tlp in labels]
    conversion.objects += indicators
    refs = [indicator["id"] for indicator in indicators]
    report = _report(event, event_time, published or event_time, TLP_MARKING_IDS[label], refs)
    conversion.objects.append(report)
    return conversion


def _indicator(
    attribute: dict,
    indicator_id: str,
    *,
    label: str,
    collection_tlp: str,
    created: dt.datetime,
    modified: dt.datetime,
) -> dict:
    """The indicator of an attribute labelled `label`; ValidationError when it may not have one here."""
    if is_narrower(label, collection_tlp):
        # Checked before the value is read, so that no message repeats what the label protects.
        raise ValidationError(
            _(
                "The attribute is TLP:%(attribute)s but the collection is TLP:%(collection)s: it was "
                "left out so that it is not shared further than its source allowed. Import the event "
                "into a collection labelled TLP:%(attribute)s or narrower to keep it."
            )
            % {"attribute": label, "collection": collection_tlp}
        )
    observable_type, value = _observable(attribute)
    indicator = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": indicator_id,
        "created": timestamp(created),
        "modified": timestamp(modified),
        "name": value,
        "pattern": pattern(observable_type, value),
        "pattern_type": "stix",
        "valid_from": timestamp(created),
        "indicator_types": ["malicious-activity"],
        "object_marking_refs": [TLP_MARKING_IDS[label]],
        "x_misp_type": str(attribute.get("type")),
        "x_misp_category": str(attribute.get("category", "")),
        "x_misp_to_ids": bool(attribute.get("to_ids", False)),
    }
    if attribute.get("comment"):
        indicator["description"] = str(attribute["comment"])
    return indicator


def _report(
    event: dict, event_time: dt.datetime, published: dt.datetime, marking: str, refs: list[str]
) -> dict:
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
    narrower than the collection raises ValidationError; both write nothing. Attributes that cannot
    be stored are listed as failures in the status."""
    document = load_document(raw, max_bytes=MAX_BUNDLE_BYTES, what="event")
    conversion = convert_event(document, collection_tlp=collection.tlp)
    if is_narrower(conversion.label, collection.tlp):
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
