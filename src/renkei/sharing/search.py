"""Full-text search and filters for reports and anonymized copies.

Every function here only narrows the queryset it is given. Callers pass a restricted queryset
(`Report.objects.restrict(user)`), so a search can never return what the access rules exclude.

Japanese has no spaces between words, so search is by substring, backed by trigram indexes that
migration 0002 creates: an FTS5 `trigram` index on SQLite, pg_trgm GIN indexes on PostgreSQL. A
query is split on whitespace into terms that must all appear (in the title or the narrative).
Terms of one or two characters, such as 停電, are shorter than a trigram: no trigram index can
answer them, so they are matched by a plain substring comparison over the (already narrowed) rows.
"""

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext as _

from renkei.directory.models import Sector
from renkei.sharing.choices import ReportStatus, Tlp
from renkei.sharing.models import AnonymizedReport, CauseCategory, Report

TRIGRAM = 3
# Long or many-termed queries cost the database much and help nobody.
MAX_QUERY_CHARACTERS = 200
MAX_TERMS = 10
SEARCHED_FIELDS = ("title", "narrative")


def search_terms(q: str | None) -> list[str]:
    """The distinct terms of a query: split on any whitespace (including the ideographic space),
    control characters removed, at most MAX_TERMS."""
    text = "".join(ch for ch in (q or "")[:MAX_QUERY_CHARACTERS] if ch.isprintable() or ch.isspace())
    return list(dict.fromkeys(text.split()))[:MAX_TERMS]


def search_reports(queryset: QuerySet[Report], q: str | None) -> QuerySet[Report]:
    """The reports of `queryset` whose title or narrative contains every term of `q`."""
    return _search(queryset, q)


def search_anonymized(queryset: QuerySet[AnonymizedReport], q: str | None) -> QuerySet[AnonymizedReport]:
    """The anonymized copies of `queryset` whose title or narrative contains every term of `q`."""
    return _search(queryset, q)


def _search(queryset: QuerySet, q: str | None) -> QuerySet:
    terms = search_terms(q)
    if not terms:
        return queryset
    long_terms = [term for term in terms if len(term) >= TRIGRAM]
    short_terms = [term for term in terms if len(term) < TRIGRAM]
    if long_terms and connections[queryset.db].vendor == "sqlite":
        queryset = queryset.filter(pk__in=_fts5_matches(queryset.model._meta.db_table, long_terms))
    else:
        # PostgreSQL answers icontains (UPPER(column) LIKE UPPER(pattern)) from the pg_trgm indexes.
        short_terms = terms
    for term in short_terms:
        queryset = queryset.filter(_contains(term))
    return queryset


def _contains(term: str) -> Q:
    condition = Q()
    for field in SEARCHED_FIELDS:
        condition |= Q(**{f"{field}__icontains": term})
    return condition


def fts5_query(terms: list[str]) -> str:
    """An FTS5 query that matches rows containing every term literally.

    Each term becomes a string (FTS5 syntax: double quotes, inner quotes doubled), so operators
    (AND, OR, NOT, NEAR), column filters, prefixes and parentheses in user input are plain text.
    """
    return " AND ".join('"' + term.replace('"', '""') + '"' for term in terms)


def _fts5_matches(table: str, terms: list[str]) -> RawSQL:
    # Table names come from model metadata, never from input; the query is a bound parameter.
    return RawSQL(  # noqa: S611
        f"SELECT k.object_id FROM {table}_fts f JOIN {table}_search_key k ON k.id = f.rowid "  # noqa: S608
        f"WHERE {table}_fts MATCH %s",
        (fts5_query(terms),),
    )


# --- Filters ---------------------------------------------------------------------------------------


def cause_ids_under(code: str) -> list[int]:
    """The cause with this code and all its subcategories (a top-level code includes them)."""
    parents = dict(CauseCategory.objects.values_list("pk", "parent_id"))
    codes = dict(CauseCategory.objects.values_list("code", "pk"))
    if code not in codes:
        raise ValidationError(
            {"cause": [ValidationError(_("Unknown cause category %(code)s.") % {"code": code}, code="cause")]}
        )
    root = codes[code]

    def descends(pk: int | None) -> bool:
        seen = set()
        while pk is not None and pk not in seen:
            if pk == root:
                return True
            seen.add(pk)
            pk = parents.get(pk)
        return False

    return [pk for pk in parents if descends(pk)]


def _unknown(field: str, message: str) -> ValidationError:
    return ValidationError({field: [ValidationError(message, code=field)]})


def filter_reports(
    queryset: QuerySet,
    *,
    sector: str | None = None,
    cause: str | None = None,
    tlp: str | None = None,
    status: str | None = None,
    since: dt.datetime | dt.date | None = None,
    until: dt.datetime | dt.date | None = None,
) -> QuerySet:
    """Narrow reports by codes (the same strings as everywhere: sector and cause codes, TLP labels,
    status values) and by detection time, both ends inclusive; a date means that whole day in the
    current time zone. Unknown codes raise ValidationError, so callers can answer 400."""
    if sector:
        if not Sector.objects.filter(code=sector).exists():
            raise _unknown("sector", _("Unknown sector %(code)s.") % {"code": sector})
        queryset = queryset.filter(sector__code=sector)
    if cause:
        queryset = queryset.filter(cause_id__in=cause_ids_under(cause))
    if tlp:
        if tlp not in Tlp.values:
            raise _unknown("tlp", _("Unknown TLP label %(tlp)s.") % {"tlp": tlp})
        queryset = queryset.filter(tlp=tlp)
    if status:
        if status not in ReportStatus.values:
            raise _unknown("status", _("Unknown status %(status)s.") % {"status": status})
        queryset = queryset.filter(status=status)
    # Bounds rather than __date, so that the detection-time index can serve them.
    if since is not None:
        queryset = queryset.filter(detected_at__gte=_start_of(since))
    if until is not None:
        if isinstance(until, dt.datetime):
            queryset = queryset.filter(detected_at__lte=_start_of(until))
        else:
            queryset = queryset.filter(detected_at__lt=_start_of(until + dt.timedelta(days=1)))
    return queryset


def filter_anonymized(
    queryset: QuerySet[AnonymizedReport], *, sector: str | None = None, cause: str | None = None
) -> QuerySet[AnonymizedReport]:
    """Narrow anonymized copies by sector (copies whose sector was generalized away never match) and
    cause."""
    if sector:
        if not Sector.objects.filter(code=sector).exists():
            raise _unknown("sector", _("Unknown sector %(code)s.") % {"code": sector})
        queryset = queryset.filter(sector__code=sector)
    if cause:
        queryset = queryset.filter(cause_id__in=cause_ids_under(cause))
    return queryset


def _start_of(value: dt.datetime | dt.date) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value)
    return timezone.make_aware(dt.datetime.combine(value, dt.time.min))
