"""Indicator correlation: every observable a source holds is indexed once, in canonical form, and
"where else was this seen" is answered with index lookups (the exact value, and IP addresses inside
CIDR ranges both ways), then shown only as far as the one access function allows.

Over-correlation guard: a value held by more than `max_sightings()` sources, or on the warning
list, stays indexed (so its count stays right) but matches nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from renkei.core.access import principal_for, restrict
from renkei.core.bulk import db_value, load_rows, staging_table
from renkei.correlation.choices import SourceKind, Suppression
from renkei.correlation.indicators import Indicator, enclosing_lows, indicator, range_warned
from renkei.correlation.models import CorrelationKey, Sighting

DEFAULT_MAX_SIGHTINGS = 1000

# (source kind, source id as text)
Source = tuple[str, str]

# The model behind each kind of source and the page that shows one.
_SOURCE_MODELS = {
    SourceKind.REPORT: ("sharing", "Report", "sharing:report_detail"),
    SourceKind.ADVISORY: ("sharing", "Advisory", "sharing:advisory_detail"),
    SourceKind.ANONYMIZED: ("sharing", "AnonymizedReport", "sharing:anonymized_detail"),
    SourceKind.STIX: ("interop", "StixObject", "interop:object_detail"),
}


def max_sightings() -> int:
    """The most sources a value may be held by and still correlate (RENKEI_CORRELATION_MAX_SIGHTINGS)."""
    return getattr(settings, "RENKEI_CORRELATION_MAX_SIGHTINGS", DEFAULT_MAX_SIGHTINGS)


def _indicators(observables: Iterable[tuple[str, str]]) -> dict[str, Indicator]:
    found: dict[str, Indicator] = {}
    for observable_type, value in observables:
        try:
            canonical = indicator(observable_type, value)
        except ValidationError:
            continue  # an imported value Renkei cannot type can match nothing anyway
        found.setdefault(canonical.key, canonical)
    return found


@transaction.atomic(savepoint=False)
def index_sightings(source_kind: str, source_id, observables: Iterable[tuple[str, str]]) -> None:
    """Record that a source holds `observables` ((type, value) pairs). Idempotent: what the source
    already holds is not added again, so an update simply passes its new version's observables.

    One source holds a handful of values: they are written directly, in two statements, where
    `index_many_sightings` needs a staging table."""
    found = _indicators(observables)
    if not found:
        return
    now = db_value(timezone.now())
    sorted_by_key = [found[key] for key in sorted(found)]
    # In key order, like the counts: two writers of one source lock its keys in one order.
    rows = [(source_kind, str(source_id), item.key, item.type, item.value, now) for item in sorted_by_key]
    with connection.cursor() as cursor:
        cursor.execute(
            ADD_SIGHTINGS.format(rows=", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(rows))),
            [field for row in rows for field in row],
        )
        new = [found[key] for key in sorted(key for (key,) in cursor.fetchall())]
        if new:
            cursor.execute(
                COUNT_SIGHTINGS.format(rows="VALUES " + ", ".join(["(%s, %s, %s, %s, 1)"] * len(new))),
                [field for item in new for field in (item.key, item.type, item.ip_low, item.ip_high)],
            )


# The unique constraint skips what a source already holds, even when two writers race; RETURNING
# names the sightings that are new, and only those add to the counts.
ADD_SIGHTINGS = """
    INSERT INTO correlation_sighting (source_kind, source_id, key, type, value, created_at) VALUES {rows}
    ON CONFLICT (source_kind, source_id, key) DO NOTHING
    RETURNING key
"""

# New sightings add to each value's count in one statement, so concurrent sources counting the same
# value both count; `rows` come in key order, so two of them lock the counts they share in one order.
COUNT_SIGHTINGS = """
    INSERT INTO correlation_correlationkey (key, type, ip_low, ip_high, source_count) {rows}
    ON CONFLICT (key) DO UPDATE
    SET source_count = correlation_correlationkey.source_count + excluded.source_count
"""
# Sources forgotten in one statement: bounded so the statement stays small.
FORGET_CHUNK = 500
STAGING = "correlation_staging"
STAGING_COLUMNS = {
    "source_kind": "varchar(16)",
    "source_id": "varchar(64)",
    "key": "varchar(64)",
    "type": "varchar(32)",
    "value": "varchar(2048)",
    "ip_low": "varchar(33)",
    "ip_high": "varchar(33)",
}


@transaction.atomic
def index_many_sightings(sources: Iterable[tuple[str, object, Iterable[tuple[str, str]]]]) -> None:
    """`index_sightings` for many sources at once (an import's objects): the sightings go through a
    staging table, and a handful of set-based statements add the new ones and count them."""
    rows = [
        (kind, str(source_id), found.key, found.type, found.value, found.ip_low, found.ip_high)
        for kind, source_id, observables in sources
        for found in _indicators(observables).values()
    ]
    if not rows:
        return
    staging_table(STAGING, STAGING_COLUMNS)
    load_rows(STAGING, list(STAGING_COLUMNS), rows)
    with connection.cursor() as cursor:
        # What a source already holds is not added again.
        cursor.execute(
            """
            DELETE FROM correlation_staging WHERE EXISTS (
                SELECT 1 FROM correlation_sighting held
                WHERE held.source_kind = correlation_staging.source_kind
                  AND held.source_id = correlation_staging.source_id
                  AND held.key = correlation_staging.key)
            """
        )
        cursor.execute(
            """
            INSERT INTO correlation_sighting (source_kind, source_id, key, type, value, created_at)
            SELECT source_kind, source_id, key, type, value, %s FROM correlation_staging
            """,
            [db_value(timezone.now())],
        )
        # `WHERE true` lets SQLite read ON CONFLICT as the upsert clause, not as part of the SELECT.
        cursor.execute(
            COUNT_SIGHTINGS.format(
                rows="SELECT key, min(type), min(ip_low), min(ip_high), count(*) FROM correlation_staging"
                " WHERE true GROUP BY key ORDER BY key"
            )
        )


@transaction.atomic
def forget_sightings(source_kind: str, source_ids: Iterable) -> None:
    """Sources that are gone (deleted STIX objects) no longer count or correlate."""
    ids = [str(source_id) for source_id in source_ids]
    for start in range(0, len(ids), FORGET_CHUNK):
        gone = Sighting.objects.filter(
            source_kind=source_kind, source_id__in=ids[start : start + FORGET_CHUNK]
        )
        removed: dict[str, int] = defaultdict(int)
        for key in gone.values_list("key", flat=True):
            removed[key] += 1
        gone.delete()
        for key, count in sorted(removed.items()):
            CorrelationKey.objects.filter(key=key).update(source_count=F("source_count") - count)


@dataclass
class _Match:
    suppressed: str | None = None
    # Each source holding the value or an address range it meets, with the values held there.
    sources: dict[Source, set[str]] | None = None


def _match(indicators: Iterable[Indicator], *, excluded: set[Source] = frozenset()) -> dict[str, _Match]:
    """For each indicator (by key): the other sources that hold it, or why it does not correlate.

    Every lookup is by key or by the start of an address range, and every answer is bounded by the
    guard, so the cost does not grow with the number of sightings stored."""
    limit = max_sightings()
    indicators = list(indicators)
    counts = dict(
        CorrelationKey.objects.filter(key__in=[i.key for i in indicators if not i.warned])
        .order_by()
        .values_list("key", "source_count")
    )
    matches: dict[str, _Match] = {}
    # The keys whose sightings match each indicator.
    matching_keys: dict[str, set[str]] = {}
    for found in indicators:
        if found.warned:
            matches[found.key] = _Match(Suppression.WARNING_LIST)
        elif counts.get(found.key, 0) > limit:
            matches[found.key] = _Match(Suppression.TOO_COMMON)
        else:
            matching_keys[found.key] = {found.key}
    addresses = [i for i in indicators if i.ip_low is not None and i.key in matching_keys]
    if addresses:
        _add_enclosing_ranges(addresses, matching_keys, limit)
    for found in addresses:
        if found.is_range and not _add_addresses_inside(found, matching_keys, limit):
            del matching_keys[found.key]
            matches[found.key] = _Match(Suppression.TOO_COMMON)

    held_by: dict[str, list[tuple[Source, str]]] = defaultdict(list)
    for key, kind, source_id, value in (
        Sighting.objects.filter(key__in=set().union(*matching_keys.values()))
        .order_by()
        .values_list("key", "source_kind", "source_id", "value")
    ):
        held_by[key].append(((kind, source_id), value))
    for key, keys in matching_keys.items():
        sources: dict[Source, set[str]] = defaultdict(set)
        for other in keys:
            for source, value in held_by[other]:
                if source not in excluded:
                    sources[source].add(value)
        matches[key] = _Match(sources=dict(sources))
    return matches


def _add_enclosing_ranges(addresses: list[Indicator], matching_keys: dict[str, set[str]], limit: int) -> None:
    """Stored CIDR ranges that contain each address or range: a CIDR range can only start at one of
    the few addresses `enclosing_lows` names, so this is one statement of exact index lookups."""
    lows = set().union(*(enclosing_lows(found.network) for found in addresses))
    ranges = (
        CorrelationKey.objects.filter(ip_low__in=lows, ip_high__gt=F("ip_low"), source_count__lte=limit)
        .order_by()
        .values_list("key", "ip_low", "ip_high")
    )
    for key, low, high in ranges:
        if range_warned(low, high):
            continue
        for found in addresses:
            if low <= found.ip_low and found.ip_high <= high:
                matching_keys[found.key].add(key)


def _add_addresses_inside(found: Indicator, matching_keys: dict[str, set[str]], limit: int) -> bool:
    """Stored addresses and narrower ranges inside the range `found`, read from the index in order
    and no further than the guard allows; False when there are more than it allows."""
    inside = list(
        CorrelationKey.objects.filter(ip_low__gte=found.ip_low, ip_low__lte=found.ip_high)
        .exclude(key=found.key)
        .order_by("ip_low")
        .values_list("key", "source_count")[: limit + 1]
    )
    if sum(count for _key, count in inside) > limit:
        return False
    # Nothing inside a range that is not on the warning list can be on it.
    matching_keys[found.key].update(key for key, _count in inside)
    return True


def correlate(observable_type: str, value: str, *, exclude: Iterable[Source] = ()) -> list[Source]:
    """The sources that hold this observable or an address range it meets, ignoring access: the
    low-level lookup, for callers that apply access themselves. Empty when the value does not
    correlate; a ValidationError when it is not a valid observable of its type."""
    found = indicator(observable_type, value)
    match = _match([found], excluded=set(exclude))[found.key]
    return sorted(match.sources or {})


@dataclass(frozen=True)
class SourceLink:
    """Another source the reader may see, and the values it holds that matched."""

    kind: str
    id: str
    title: str
    url: str | None
    values: tuple[str, ...]

    @property
    def kind_label(self) -> str:
        return SourceKind(self.kind).label


@dataclass(frozen=True)
class ObservableSeen:
    """Where else one observable of the source was seen, as far as the reader may know."""

    type: str
    value: str
    links: list[SourceLink]
    # Other sources the reader may not see: counted for the national centre only, None for others.
    hidden_count: int | None
    suppressed: str | None

    @property
    def suppressed_label(self) -> str:
        return Suppression(self.suppressed).label if self.suppressed else ""

    @property
    def anything(self) -> bool:
        return bool(self.links or self.hidden_count or self.suppressed)


@dataclass(frozen=True)
class SeenElsewhere:
    """The answer for one source: each of its observables, in the order they were indexed."""

    observables: list[ObservableSeen]
    # Whether hidden sources are counted for this reader (the national centre).
    counts_hidden: bool

    @property
    def anything(self) -> bool:
        return any(observable.anything for observable in self.observables)


def seen_elsewhere(source_kind: str, source_id, user) -> SeenElsewhere:
    """For each observable of a source: links to the other sources holding it that `user` may see
    and, for the national centre only, how many others there are. Copies made from the source (and
    the original of a copy), and other versions of the same STIX object, are the same sighting, not
    another one, and are left out; the versions of any other STIX object count, and link, once."""
    source_id = str(source_id)
    held = _indicators(
        Sighting.objects.filter(source_kind=source_kind, source_id=source_id)
        .order_by("pk")
        .values_list("type", "value")
    )
    excluded = {(source_kind, source_id)} | _same_sighting(source_kind, source_id)
    matches = _match(held.values(), excluded=excluded)
    _one_source_per_stix_object(matches)
    tells_hidden = principal_for(user).is_national_center
    links = _visible_links({source for m in matches.values() for source in m.sources or ()}, user)
    observables = []
    for found in held.values():
        match = matches[found.key]
        sources = match.sources or {}
        visible = [
            replace(links[source], values=tuple(sorted(sources[source])))
            for source in sources
            if source in links
        ]
        # Telling anyone else that a value is too common would tell them how often others hold it.
        told = match.suppressed if match.suppressed != Suppression.TOO_COMMON or tells_hidden else None
        observables.append(
            ObservableSeen(
                type=found.type,
                value=found.value,
                links=sorted(visible, key=lambda link: (link.kind, link.title, link.id)),
                hidden_count=len(sources) - len(visible) if tells_hidden else None,
                suppressed=told,
            )
        )
    return SeenElsewhere(observables=observables, counts_hidden=tells_hidden)


def _same_sighting(source_kind: str, source_id: str) -> set[Source]:
    AnonymizedReport = apps.get_model("sharing", "AnonymizedReport")
    if source_kind == SourceKind.REPORT:
        copies = AnonymizedReport.objects.filter(source_id=source_id).values_list("pk", flat=True)
        return {(SourceKind.ANONYMIZED, str(pk)) for pk in copies}
    if source_kind == SourceKind.ANONYMIZED:
        originals = AnonymizedReport.objects.filter(pk=source_id).values_list("source_id", flat=True)
        return {(SourceKind.REPORT, str(pk)) for pk in originals}
    if source_kind == SourceKind.STIX:
        # Only within its collection: the same id in another collection was shared separately, to
        # the audience of that collection, and is another sighting.
        StixObject = apps.get_model("interop", "StixObject")
        this = StixObject.objects.filter(pk__in=_valid_keys(StixObject, [source_id]))
        versions = StixObject.objects.filter(
            collection__in=this.values("collection"), stix_id__in=this.values("stix_id")
        ).values_list("pk", flat=True)
        return {(SourceKind.STIX, str(pk)) for pk in versions}
    return set()


def _one_source_per_stix_object(matches: dict[str, _Match]) -> None:
    """Each version of a STIX object is indexed as a source of its own, but the versions of one
    object in one collection are one sighting: each match keeps the newest of them holding the
    value, with the values any of them holds. One query for all the matches."""
    stix_pks = {
        pk for match in matches.values() for kind, pk in match.sources or () if kind == SourceKind.STIX
    }
    if not stix_pks:
        return
    StixObject = apps.get_model("interop", "StixObject")
    # Each stored version: the object it is a version of, and which version.
    versions = {
        str(pk): ((collection_id, stix_id), version)
        for pk, collection_id, stix_id, version in StixObject.objects.filter(
            pk__in=_valid_keys(StixObject, list(stix_pks))
        )
        .order_by()
        .values_list("pk", "collection_id", "stix_id", "version")
    }
    for match in matches.values():
        newest: dict[tuple, str] = {}
        for kind, pk in match.sources or ():
            if kind == SourceKind.STIX and pk in versions:
                stored_object, version = versions[pk]
                kept = newest.get(stored_object)
                if kept is None or versions[kept][1] < version:
                    newest[stored_object] = pk
        if not newest:
            continue
        sources: dict[Source, set[str]] = defaultdict(set)
        for (kind, source_id), values in match.sources.items():
            if kind == SourceKind.STIX and source_id in versions:
                source_id = newest[versions[source_id][0]]
            sources[(kind, source_id)] |= values
        match.sources = dict(sources)


def _visible_links(sources: set[Source], user) -> dict[Source, SourceLink]:
    """The sources `user` may see, through `restrict` like every other read: one query per kind."""
    by_kind: dict[str, list[str]] = defaultdict(list)
    for kind, source_id in sources:
        by_kind[kind].append(source_id)
    links = {}
    for kind, ids in by_kind.items():
        app_label, model_name, url_name = _SOURCE_MODELS[kind]
        try:
            model = apps.get_model(app_label, model_name)
        except LookupError:
            continue  # imported objects before the interop app is installed
        for obj in restrict(model._default_manager.filter(pk__in=_valid_keys(model, ids)), user):
            if url_name:
                url = reverse(url_name, args=[obj.pk])
            else:
                url = obj.get_absolute_url() if hasattr(obj, "get_absolute_url") else None
            links[(kind, str(obj.pk))] = SourceLink(kind, str(obj.pk), str(obj), url, ())
    return links


def _valid_keys(model, ids: list[str]) -> list:
    """The ids that can be primary keys of `model`; any other cannot name one of its objects."""
    valid = []
    for source_id in ids:
        try:
            valid.append(model._meta.pk.to_python(source_id))
        except ValidationError:
            continue
    return valid
