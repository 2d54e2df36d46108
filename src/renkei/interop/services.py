"""Writing STIX objects into collections: one path for uploads, TAXII writes, feeds and MISP imports.

Objects arrive already checked by `stix_validation`; this module decides what is new. An object whose
id and version the collection already holds is accepted without a second copy (so a feed polled twice
or an upload repeated stores nothing twice), a newer version supersedes the newest one held, and an
older one is kept as history.
"""

import datetime as dt
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import orjson
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from renkei.audit.models import AuditAction
from renkei.audit.services import audit_write, snapshot
from renkei.core.access import restrict
from renkei.core.bulk import load_rows
from renkei.core.choices import Action
from renkei.correlation.choices import SourceKind
from renkei.correlation.services import index_many_sightings
from renkei.directory.models import Organization, User
from renkei.interop.collection_sharing import (
    Sharing,
    check,
    check_administrator,
    sharing_apply,
    sharing_check,
    sharing_snapshot,
)
from renkei.interop.models import (
    SUBMITTING_TYPES,
    Collection,
    CollectionAudience,
    IngestStatus,
    StixObject,
)
from renkei.interop.observables import stix_observables
from renkei.interop.stix_validation import TLP_V1_MARKINGS, garbage_collector_paused, parse_bundle
from renkei.interop.tasks import stix_sightings_index
from renkei.sharing.choices import Tlp, is_narrower, narrowest
from renkei.sharing.stix import TLP_MARKING_IDS

# The TLP label of each marking an object may carry: TLP 2.0's, and 1.0's (whose WHITE is CLEAR).
TLP_OF_MARKING = {marking: tlp for tlp, marking in TLP_MARKING_IDS.items()} | {
    TLP_V1_MARKINGS[name]: tlp
    for name, tlp in (("white", Tlp.CLEAR), ("green", Tlp.GREEN), ("amber", Tlp.AMBER), ("red", Tlp.RED))
}

# Ids listed in one statement (SQLite binds at most 32,766 parameters).
IDS_PER_STATEMENT = 10_000
# Objects indexed for correlation in one go after an import.
INDEX_BATCH = 5000
# The largest bundle accepted in one upload or TAXII write.
MAX_BUNDLE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Failure:
    stix_id: str | None
    version: str | None
    message: str


def writable_collection_ids(user) -> set:
    """The collections `user` may add objects to (which they may all read too)."""
    return set(restrict(Collection.objects.all(), user, Action.CHANGE).values_list("pk", flat=True))


def submissions_collection(organization: Organization) -> Collection:
    """The organization's own submissions: shared along its mandated chain like a report."""
    collection, _created = Collection.objects.get_or_create(
        owner=organization,
        is_submissions=True,
        defaults={"audience": CollectionAudience.CHAIN},
    )
    return collection


@dataclass(kw_only=True)
class CollectionSettings(Sharing):
    """What an organization's officers choose for a collection it shares objects through."""

    title: str
    description: str = ""


def _collection_snapshot(collection: Collection) -> dict:
    return snapshot(collection) | sharing_snapshot(collection)


@transaction.atomic
def collection_create(*, actor: User, owner: Organization, data: CollectionSettings) -> Collection:
    """A new collection of `owner`'s, shared with the audience chosen; its writers add objects to it."""
    check_administrator(actor, owner)
    check(bool(data.title.strip()), _("A title is required."), "title")
    check(owner.type in SUBMITTING_TYPES, _("This organization cannot share collections."), "organization")
    sharing_check(data)
    collection = Collection.objects.create(
        owner=owner, title=data.title.strip(), description=data.description
    )
    sharing_apply(collection, data)
    audit_write(
        actor=actor, action=AuditAction.CREATE, obj=collection, after=_collection_snapshot(collection)
    )
    return collection


@transaction.atomic
def collection_update(*, actor: User, collection: Collection, data: CollectionSettings) -> Collection:
    """Change a shared collection's title, label or audience; its objects are shared the new way at once.
    Submissions follow the mandated chain and a feed's collection is set with the feed."""
    collection = Collection.objects.select_for_update().select_related("owner").get(pk=collection.pk)
    check_administrator(actor, collection.owner)
    check(
        not collection.is_submissions and not hasattr(collection, "feed"),
        _("This collection's sharing is set with its feed or follows the mandated chain."),
        "audience",
    )
    check(bool(data.title.strip()), _("A title is required."), "title")
    sharing_check(data)
    before = _collection_snapshot(collection)
    collection.title, collection.description = data.title.strip(), data.description
    collection.save(update_fields=["title", "description"])
    sharing_apply(collection, data)
    audit_write(
        actor=actor,
        action=AuditAction.UPDATE,
        obj=collection,
        before=before,
        after=_collection_snapshot(collection),
    )
    return collection


def submissions_collection_for_new_organization(
    sender, instance: Organization, created: bool, raw=False, **kwargs
):
    if created and not raw and instance.type in SUBMITTING_TYPES:
        submissions_collection(instance)


def _within_label(collection: Collection, objects: list[dict]) -> tuple[list[dict], list[Failure]]:
    """The objects `collection` may share as they are marked, and a failure for each one marked with
    a narrower TLP label than the collection's."""
    within, refused = [], []
    for obj in objects:
        labels = [TLP_OF_MARKING[ref] for ref in obj.get("object_marking_refs", ()) if ref in TLP_OF_MARKING]
        label = narrowest(labels) if labels else None
        if label is None or not is_narrower(label, collection.tlp):
            within.append(obj)
            continue
        message = _(
            "marked TLP:%(object)s, but this collection shares at TLP:%(collection)s: it would reach "
            "more people than its source allowed"
        ) % {"object": label, "collection": collection.tlp}
        refused.append(Failure(obj["id"], _version_text(obj), message))
    return within, refused


def object_version(obj: dict, added: dt.datetime) -> dt.datetime:
    """TAXII 2.1 §3.4.1: an object's version is its `modified`, else its `created`, else when it was added."""
    stamp = obj.get("modified") or obj.get("created")
    return dt.datetime.fromisoformat(stamp) if stamp else added


def _version_text(obj: dict) -> str | None:
    return obj.get("modified") or obj.get("created")


def import_bundle(collection: Collection, raw: bytes, *, user: User):
    """Check and store an uploaded bundle. A bundle that cannot be read at all raises BundleRejected
    and writes nothing; invalid objects in a readable one are listed in the status."""
    parsed = parse_bundle(raw, max_bytes=MAX_BUNDLE_BYTES)
    failures = [Failure(stix_id, version, message) for stix_id, version, message in parsed.failures]
    return ingest(collection, parsed.objects, failures=failures, user=user)


@garbage_collector_paused()
@transaction.atomic
def ingest(
    collection: Collection,
    objects: list[dict],
    *,
    failures: Iterable[Failure] = (),
    user: User | None,
) -> IngestStatus:
    """Store valid `objects` in `collection` and record the outcome, `failures` included, as one status.

    Objects marked with a narrower TLP label than the collection's are refused: the collection would
    share them further than their source allowed. Under the collection's lock, one look at the
    versions held of the incoming ids decides which objects are new and which version of each id is
    now the current one; the new ones are then loaded straight into place and only the held rows
    that stop (or start) being current change."""
    # One writer per collection at a time, so what was read below is still so when the rows go in.
    Collection.objects.select_for_update().filter(pk=collection.pk).first()
    added = timezone.now()
    objects, over_the_label = _within_label(collection, objects)
    failures = [*failures, *over_the_label]
    held = _versions_held(collection, list({obj["id"] for obj in objects}))
    held_versions = {(stix_id, version) for stix_id, version, _pk, _current in held}
    # An object with neither `modified` nor `created` (a cyber-observable, named after its value)
    # has one version: when the collection first received it. Sent again, it is the one held.
    first_held: dict[str, dt.datetime] = {}
    for stix_id, version in held_versions:
        first_held[stix_id] = min(version, first_held.get(stix_id, version))
    versioned = [(obj, object_version(obj, first_held.get(obj["id"], added))) for obj in objects]
    successes = [
        {"id": obj["id"], "version": _version_text(obj) or _timestamp(version)} for obj, version in versioned
    ]
    # The same id and version twice in one write is one object.
    distinct: dict[tuple[str, dt.datetime], dict] = {}
    for obj, version in versioned:
        distinct.setdefault((obj["id"], version), obj)
    newest: dict[str, dt.datetime] = {}
    for stix_id, version in [*distinct, *held_versions]:
        newest[stix_id] = max(version, newest.get(stix_id, version))
    new = {key: obj for key, obj in distinct.items() if key not in held_versions}
    _settle_held_versions(held, newest)
    load_rows("interop_stixobject", STORED_COLUMNS, stored_rows(collection, new, newest, added))
    stored = len(new)
    if stored:
        # Queued in this transaction (tasks live in the same database): the indexing exists exactly
        # when the objects do, even if the process dies right after the commit.
        stix_sightings_index.enqueue(collection_id=str(collection.pk), added=added.isoformat())

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
        % {"stored": stored, "collection": collection.display_title},
        # The per-object lists stay in the status; the trail records the counts.
        after=snapshot(status, exclude=("successes", "failures"), just_created=True) | {"stored": stored},
    )
    return status


STORED_FIELDS = [
    "collection",
    "stix_id",
    "type",
    "spec_version",
    "version",
    "date_added",
    "is_latest",
    "body",
]
STORED_COLUMNS = [StixObject._meta.get_field(name).column for name in STORED_FIELDS]


def stored_rows(
    collection: Collection,
    objects: dict[tuple[str, dt.datetime], dict],
    newest: dict[str, dt.datetime],
    added: dt.datetime,
) -> Iterator[tuple]:
    """The STORED_COLUMNS of new `objects` ((id, version) → object), each id's `newest` version marked
    current. Everything a row needs is at hand beforehand: no query may run during a COPY."""
    collection_id = StixObject._meta.get_field("collection").get_db_prep_value(collection.pk, connection)
    for (stix_id, version), obj in objects.items():
        yield (
            collection_id,
            stix_id,
            obj["type"],
            obj.get("spec_version", "2.1"),
            version,
            added,
            version == newest[stix_id],
            compact_json(obj),
        )


# On PostgreSQL the ids go as one text, split by the server (STIX ids hold no spaces): sending them as
# an array costs more than the probes. Each id is probed on its own through the unique index; OFFSET 0
# keeps the planner from turning the probes into a scan of the whole collection, which it chooses
# whenever its statistics are stale (a collection being filled looks almost empty until ANALYZE).
HELD_VERSIONS = """
    SELECT held.stix_id, held.version, held.id, held.is_latest
    FROM unnest(string_to_array(%s, ' ')) AS wanted(stix_id)
    CROSS JOIN LATERAL (
        SELECT stix_id, version, id, is_latest FROM interop_stixobject
        WHERE collection_id = %s AND stix_id = wanted.stix_id OFFSET 0
    ) AS held
"""


def _versions_held(collection: Collection, ids: list[str]) -> list[tuple[str, dt.datetime, int, bool]]:
    """(stix id, version, pk, is current) of every version the collection holds of `ids`: one index
    probe per id, so the cost follows the size of the write, not of the collection."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(HELD_VERSIONS, [" ".join(ids), collection.pk])
            return cursor.fetchall()
    held = []
    for start in range(0, len(ids), IDS_PER_STATEMENT):
        chunk = ids[start : start + IDS_PER_STATEMENT]
        held += StixObject.objects.filter(collection=collection, stix_id__in=chunk).values_list(
            "stix_id", "version", "pk", "is_latest"
        )
    return held


def _settle_held_versions(
    held: list[tuple[str, dt.datetime, int, bool]], newest: dict[str, dt.datetime]
) -> None:
    """Mark as current exactly the held rows that are their id's newest version now."""
    changed = {True: [], False: []}
    for stix_id, version, pk, is_latest in held:
        if is_latest != (version == newest[stix_id]):
            changed[not is_latest].append(pk)
    for is_latest, pks in changed.items():
        for start in range(0, len(pks), IDS_PER_STATEMENT):
            StixObject.objects.filter(pk__in=pks[start : start + IDS_PER_STATEMENT]).update(
                is_latest=is_latest
            )


def index_stored_objects(collection_id: str, added: str) -> int:
    """Index the observables of the objects that one write (`added`, its date_added) stored in a
    collection; returns how many objects were read."""
    stored = StixObject.objects.filter(
        collection_id=collection_id, date_added=dt.datetime.fromisoformat(added)
    )
    rows = stored.values_list("pk", "body").iterator(chunk_size=INDEX_BATCH)
    count = 0
    while batch := list(itertools.islice(rows, INDEX_BATCH)):
        index_many_sightings((SourceKind.STIX, pk, stix_observables(json.loads(body))) for pk, body in batch)
        count += len(batch)
    return count


def compact_json(obj: dict) -> str:
    """An object as it is stored and served: compact JSON, with its non-ASCII text as it is."""
    try:
        return orjson.dumps(obj).decode()
    except TypeError:  # orjson writes neither integers beyond 64 bits nor lone surrogates: escape
        return json.dumps(obj, separators=(",", ":"))


def _timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
