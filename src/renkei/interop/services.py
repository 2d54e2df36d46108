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

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from renkei.audit.models import AuditAction
from renkei.audit.services import audit_write, snapshot
from renkei.core.bulk import load_rows, staging_table
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
    """Store valid `objects` in `collection` and record the outcome, `failures` included, as one status.

    The objects go through a staging table into place in a few set-based statements: those whose id
    and version the collection already holds are left out by the unique constraint, and the newest
    version of every id touched is then marked as the current one."""
    # One writer per collection at a time, so "the newest version" is decided against settled data.
    Collection.objects.select_for_update().filter(pk=collection.pk).first()
    added = timezone.now()
    source = source or collection.owner
    failures = list(failures)
    successes = [{"id": obj["id"], "version": _version_text(obj) or _timestamp(added)} for obj in objects]
    staging_table(STAGING, STAGING_COLUMNS)
    load_rows(
        STAGING,
        list(STAGING_COLUMNS),
        (
            (
                number,
                obj["id"],
                obj["type"],
                obj.get("spec_version", "2.1"),
                object_version(obj, added),
                json.dumps(obj, ensure_ascii=False, separators=(",", ":")),
            )
            for number, obj in enumerate(objects)
        ),
    )
    stored = _move_into_place(collection, added=added, source=source, user=user)
    index_many_sightings((SourceKind.STIX, pk, stix_observables(objects[number])) for pk, number in stored)

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
        % {"stored": len(stored), "collection": collection.display_title},
        # The per-object lists stay in the status; the trail records the counts.
        after=snapshot(status, exclude=("successes", "failures"), just_created=True)
        | {"stored": len(stored)},
    )
    return status


STAGING = "interop_staging"
STAGING_COLUMNS = {
    "number": "integer",
    "stix_id": "varchar(300)",
    "type": "varchar(250)",
    "spec_version": "varchar(8)",
    "version": "timestamp with time zone",
    "body": "text",
}


def _move_into_place(collection: Collection, *, added: dt.datetime, source: Organization, user) -> list:
    """Insert the staged objects the collection does not hold yet; return (pk, staged number) of each."""
    prepared = {
        "collection": _prepared("collection", collection.pk),
        "added": _prepared("date_added", added),
        "source": source.pk,
        "user": user.pk if user is not None else None,
    }
    with connection.cursor() as cursor:
        # `WHERE true` lets SQLite read ON CONFLICT as the upsert clause, not as part of the SELECT.
        cursor.execute(
            """
            INSERT INTO interop_stixobject
                (collection_id, stix_id, type, spec_version, version, date_added, is_latest, body,
                 source_id, added_by_id)
            SELECT %(collection)s, stix_id, type, spec_version, version, %(added)s, true, body,
                   %(source)s, %(user)s
            FROM interop_staging WHERE true
            ON CONFLICT (collection_id, stix_id, version) DO NOTHING
            """,
            prepared,
        )
        # Rows added now carry this write's date_added; an earlier copy of the same version does not.
        cursor.execute(
            """
            SELECT o.id, s.number FROM interop_staging s
            JOIN interop_stixobject o
              ON o.collection_id = %(collection)s AND o.stix_id = s.stix_id AND o.version = s.version
            WHERE o.date_added = %(added)s
            """,
            prepared,
        )
        stored = cursor.fetchall()
        # Only ids with more than one version can have the wrong current one: those the collection
        # held before, and those sent in several versions at once.
        cursor.execute(
            """
            UPDATE interop_stixobject SET is_latest = (version = (
                SELECT max(other.version) FROM interop_stixobject other
                WHERE other.collection_id = interop_stixobject.collection_id
                  AND other.stix_id = interop_stixobject.stix_id))
            WHERE collection_id = %(collection)s AND stix_id IN (
                SELECT s.stix_id FROM interop_staging s
                JOIN interop_stixobject o ON o.collection_id = %(collection)s AND o.stix_id = s.stix_id
                WHERE o.date_added <> %(added)s
                UNION
                SELECT stix_id FROM interop_staging GROUP BY stix_id HAVING count(*) > 1)
            """,
            prepared,
        )
    return stored


def _prepared(field: str, value):
    return StixObject._meta.get_field(field).get_db_prep_value(value, connection)


def _timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
