"""Writing STIX objects into collections: one path for uploads, TAXII writes, feeds and MISP imports.

Objects arrive already checked by `stix_validation`; this module decides what is new. An object whose
id and version the collection already holds is accepted without a second copy (so a feed polled twice
or an upload repeated stores nothing twice), a newer version supersedes the newest one held, and an
older one is kept as history.
"""

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from renkei.audit.models import AuditAction
from renkei.audit.services import audit_write, snapshot
from renkei.correlation.choices import SourceKind
from renkei.correlation.services import index_many_sightings
from renkei.directory.models import Organization, User
from renkei.interop.models import (
    SUBMITTING_TYPES,
    Collection,
    CollectionAudience,
    IngestStatus,
    StixObject,
)
from renkei.interop.observables import stix_observables
from renkei.interop.stix_validation import parse_bundle

# Existing versions are looked up this many ids at a time, well under every database's parameter limit.
LOOKUP_CHUNK = 500
INSERT_BATCH = 1000
# The largest bundle accepted in one upload or TAXII write.
MAX_BUNDLE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Failure:
    stix_id: str | None
    version: str | None
    message: str


def submissions_collection(organization: Organization) -> Collection:
    """The organization's own submissions: shared along its mandated chain like a report."""
    collection, _created = Collection.objects.get_or_create(
        owner=organization,
        is_submissions=True,
        defaults={"audience": CollectionAudience.CHAIN},
    )
    return collection


def submissions_collection_for_new_organization(
    sender, instance: Organization, created: bool, raw=False, **kwargs
):
    if created and not raw and instance.type in SUBMITTING_TYPES:
        submissions_collection(instance)


def object_version(obj: dict, added: dt.datetime) -> dt.datetime:
    """TAXII 2.1 §3.4.1: an object's version is its `modified`, else its `created`, else when it was added."""
    stamp = obj.get("modified") or obj.get("created")
    return dt.datetime.fromisoformat(stamp) if stamp else added


def _version_text(obj: dict) -> str | None:
    return obj.get("modified") or obj.get("created")


def import_bundle(collection: Collection, raw: bytes, *, user: User, source: Organization | None = None):
    """Check and store an uploaded bundle. A bundle that cannot be read at all raises BundleRejected
    and writes nothing; invalid objects in a readable one are listed in the status."""
    parsed = parse_bundle(raw, max_bytes=MAX_BUNDLE_BYTES)
    failures = [Failure(stix_id, version, message) for stix_id, version, message in parsed.failures]
    return ingest(collection, parsed.objects, failures=failures, user=user, source=source)


@transaction.atomic
def ingest(
    collection: Collection,
    objects: list[dict],
    *,
    failures: Iterable[Failure] = (),
    user: User | None,
    source: Organization | None = None,
) -> IngestStatus:
    """Store valid `objects` in `collection` and record the outcome, `failures` included, as one status."""
    # One writer per collection at a time, so "the newest version" is decided against settled data.
    Collection.objects.select_for_update().filter(pk=collection.pk).first()
    added = timezone.now()
    source = source or collection.owner
    failures = list(failures)
    successes = []
    held = _versions_held(collection, {obj["id"] for obj in objects})
    newest = {stix_id: max(versions) for stix_id, versions in held.items() if versions}
    fresh: dict[tuple[str, dt.datetime], dict] = {}
    for obj in objects:
        version = object_version(obj, added)
        key = (obj["id"], version)
        successes.append({"id": obj["id"], "version": _version_text(obj) or _timestamp(added)})
        if version in held.get(obj["id"], {}) or key in fresh:
            continue
        fresh[key] = obj
        if version > newest.get(obj["id"], dt.datetime.min.replace(tzinfo=dt.UTC)):
            newest[obj["id"]] = version

    rows = [
        StixObject(
            collection=collection,
            stix_id=stix_id,
            type=obj["type"],
            spec_version=obj.get("spec_version", "2.1"),
            version=version,
            date_added=added,
            is_latest=version == newest[stix_id],
            body=json.dumps(obj, ensure_ascii=False, separators=(",", ":")),
            source=source,
            added_by=user,
        )
        for (stix_id, version), obj in fresh.items()
    ]
    StixObject.objects.bulk_create(rows, batch_size=INSERT_BATCH)
    index_many_sightings(
        (SourceKind.STIX, row.pk, stix_observables(obj))
        for row, obj in zip(rows, fresh.values(), strict=True)
    )
    superseded = [
        pk
        for stix_id, versions in held.items()
        for version, (pk, is_latest) in versions.items()
        if is_latest and version != newest[stix_id]
    ]
    for start in range(0, len(superseded), LOOKUP_CHUNK):
        StixObject.objects.filter(pk__in=superseded[start : start + LOOKUP_CHUNK]).update(is_latest=False)

    status = IngestStatus.objects.create(
        collection=collection,
        requested_by=user,
        total_count=len(successes) + len(failures),
        success_count=len(successes),
        failure_count=len(failures),
        successes=successes,
        failures=[
            {"id": failure.stix_id, "version": failure.version, "message": failure.message}
            for failure in failures
        ],
    )
    audit_write(
        actor=user,
        action=AuditAction.CREATE,
        obj=status,
        object_repr=_("%(stored)d STIX objects stored in %(collection)s")
        % {"stored": len(rows), "collection": collection.display_title},
        after=snapshot(status, just_created=True) | {"stored": len(rows)},
    )
    return status


def _versions_held(collection: Collection, stix_ids: set[str]) -> dict[str, dict]:
    """For each id, the versions the collection holds: {version: (pk, is_latest)}."""
    held: dict[str, dict] = {}
    ids = sorted(stix_ids)
    for start in range(0, len(ids), LOOKUP_CHUNK):
        for pk, stix_id, version, is_latest in StixObject.objects.filter(
            collection=collection, stix_id__in=ids[start : start + LOOKUP_CHUNK]
        ).values_list("pk", "stix_id", "version", "is_latest"):
            held.setdefault(stix_id, {})[version] = (pk, is_latest)
    return held


def _timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
