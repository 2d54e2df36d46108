"""A TAXII 2.1 server (OASIS TAXII 2.1, §4–5) over Renkei's collections, at /taxii2/.

One API root. Clients authenticate as platform users, with a Bearer token or HTTP Basic (user name
and an API token as password); every collection, object, manifest and status answer is read through
the access function, so a client sees exactly what the user could open in the web interface.

Pages run in the order objects were added, (date_added, id), which the collection's index serves
directly: `next` is that pair, so the thousandth page costs what the first does.
"""

import base64
import binascii
import datetime as dt
import functools
import uuid

import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import Min, OuterRef, Q, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from renkei.core.access import get_restricted_or_404, restrict
from renkei.core.choices import Action
from renkei.core.middleware import preferred_language
from renkei.core.services import token_authenticate
from renkei.correlation.choices import SourceKind
from renkei.correlation.services import forget_sightings
from renkei.interop.models import Collection, IngestStatus, StixObject
from renkei.interop.services import MAX_BUNDLE_BYTES, Failure, ingest, writable_collection_ids
from renkei.interop.stix_validation import BundleRejected, parse_envelope
from renkei.interop.view_collections import VIEW_COLLECTIONS, ViewCollection

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
STIX_MEDIA_TYPE = "application/stix+json;version=2.1"
DEFAULT_PAGE = 1000
MAX_PAGE = 10000
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class TaxiiError(Exception):
    """An error answered as a TAXII error message (§3.6.1)."""

    def __init__(self, status: int, title: str, description: str = "", headers: dict | None = None):
        super().__init__(title)
        self.status, self.title, self.description, self.headers = status, title, description, headers or {}


def _answer(body, status: int = 200, headers: dict | None = None) -> HttpResponse:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    response = HttpResponse(content, status=status, content_type=TAXII_MEDIA_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _error(error: TaxiiError) -> HttpResponse:
    body = {"title": error.title, "http_status": str(error.status)}
    if error.description:
        body["description"] = error.description
    return _answer(body, error.status, error.headers)


def _accepts_taxii(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    if not accept:
        return True
    for offered in accept.split(","):
        media = offered.split(";q=")[0].replace(" ", "").lower()
        if media in ("*/*", "application/*", "application/taxii+json", TAXII_MEDIA_TYPE):
            return True
    return False


def _authenticated_user(request: HttpRequest):
    scheme, _space, credentials = request.headers.get("Authorization", "").partition(" ")
    scheme = scheme.lower()
    username = None
    if scheme == "basic":
        try:
            username, _colon, secret = base64.b64decode(credentials.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            secret = ""
    elif scheme == "bearer":
        secret = credentials.strip()
    else:
        secret = ""
    token = token_authenticate(secret) if secret else None
    if token is None or (username is not None and token.user.get_username() != username):
        raise TaxiiError(
            401,
            _("Authentication required."),
            _("Send an API token as Bearer, or your user name and an API token with HTTP Basic."),
            {"WWW-Authenticate": 'Basic realm="Renkei TAXII", charset="UTF-8"'},
        )
    return token.user


def taxii_endpoint(*methods: str):
    """A TAXII view: method check, authentication, content negotiation, errors as TAXII messages."""

    def decorate(view):
        @csrf_exempt
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs):
            try:
                if request.method not in methods:
                    raise TaxiiError(405, _("Method not allowed."), headers={"Allow": ", ".join(methods)})
                request.user = _authenticated_user(request)
                request.LANGUAGE_CODE = preferred_language(request)
                translation.activate(request.LANGUAGE_CODE)
                if not _accepts_taxii(request):
                    raise TaxiiError(
                        406, _("This server answers only %(media)s.") % {"media": TAXII_MEDIA_TYPE}
                    )
                return view(request, *args, **kwargs)
            except TaxiiError as error:
                return _error(error)

        return wrapped

    return decorate


@taxii_endpoint("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
def not_found(request: HttpRequest):
    slash = "" if request.path.endswith("/") else _("TAXII addresses end with a slash.")
    raise TaxiiError(404, _("There is no such address on this TAXII server."), slash)


def _api_root_url(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("taxii:api_root"))


@taxii_endpoint("GET")
def discovery(request: HttpRequest):
    return _answer(
        {
            "title": _("Renkei TAXII server"),
            "description": _("Critical-infrastructure information sharing over TAXII 2.1."),
            "contact": settings.DEFAULT_FROM_EMAIL,
            "default": _api_root_url(request),
            "api_roots": [_api_root_url(request)],
        }
    )


@taxii_endpoint("GET")
def api_root(request: HttpRequest):
    return _answer(
        {
            "title": _("Renkei"),
            "description": _("Collections of the critical-infrastructure community."),
            "versions": [TAXII_MEDIA_TYPE],
            "max_content_length": MAX_BUNDLE_BYTES,
        }
    )


def _collection_resource(collection: Collection, writable: set) -> dict:
    return {
        "id": str(collection.id),
        "title": collection.display_title,
        "description": collection.description,
        "can_read": True,
        "can_write": collection.pk in writable,
        "media_types": [STIX_MEDIA_TYPE],
    }


@taxii_endpoint("GET")
def collections(request: HttpRequest):
    readable = restrict(Collection.objects.all(), request.user).order_by("created_at", "pk")
    writable = writable_collection_ids(request.user)
    stored = [_collection_resource(item, writable) for item in readable]
    views = [view.resource() for view in VIEW_COLLECTIONS.values()]
    return _answer({"collections": [*views, *stored]})


def _collection(request: HttpRequest, collection_id) -> Collection:
    try:
        return get_restricted_or_404(Collection.objects.all(), request.user, pk=collection_id)
    except Http404 as error:  # a collection one may not see is missing
        raise TaxiiError(404, _("No such collection.")) from error


def _writable_collection(request: HttpRequest, collection_id, refusal: str) -> Collection:
    """The collection, if the user may change its objects: one restricted lookup when they may. A
    collection they may only read refuses with `refusal` (403); one they may not read is missing."""
    try:
        # With its owner, whose name the write's audit record gives.
        writable = Collection.objects.select_related("owner")
        return get_restricted_or_404(writable, request.user, Action.CHANGE, pk=collection_id)
    except Http404:
        _collection(request, collection_id)
        raise TaxiiError(403, refusal) from None


@taxii_endpoint("GET")
def collection(request: HttpRequest, collection_id):
    if collection_id in VIEW_COLLECTIONS:
        return _answer(VIEW_COLLECTIONS[collection_id].resource())
    found = _collection(request, collection_id)
    return _answer(_collection_resource(found, writable_collection_ids(request.user)))


def _parse_timestamp(value: str, name: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise TaxiiError(400, _("%(name)s is not a timestamp.") % {"name": name}, value)
    return parsed


def _format(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime(TIMESTAMP_FORMAT)


def _limit(request: HttpRequest) -> int:
    raw = request.GET.get("limit")
    if raw is None:
        return DEFAULT_PAGE
    if not raw.isdigit() or int(raw) < 1:
        raise TaxiiError(400, _("limit must be a positive whole number."), raw)
    return min(int(raw), MAX_PAGE)


def _cursor(token: str, key_type=int) -> tuple:
    """The (date added, primary key) a `next` token names; `key_type` reads the key."""
    try:
        stamp, _bar, pk = base64.urlsafe_b64decode(token.encode()).decode().partition("|")
        return dt.datetime.fromisoformat(stamp), key_type(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise TaxiiError(400, _("next is not a token this server gave."), token) from error


def _token(date_added: dt.datetime, pk) -> str:
    return base64.urlsafe_b64encode(f"{date_added.isoformat()}|{pk}".encode()).decode()


def _next_token(row: StixObject) -> str:
    return _token(row.date_added, row.pk)


def _matching(request: HttpRequest, found: Collection, *, object_id: str | None = None):
    """The collection's objects that the request's filters select, in the order they were added."""
    rows = restrict(StixObject.objects.filter(collection=found), request.user)
    if object_id is not None:
        rows = rows.filter(stix_id=object_id)
    if "added_after" in request.GET:
        rows = rows.filter(date_added__gt=_parse_timestamp(request.GET["added_after"], "added_after"))
    if ids := _listed(request, "match[id]"):
        rows = rows.filter(stix_id__in=ids)
    if types := _listed(request, "match[type]"):
        rows = rows.filter(type__in=types)
    if spec_versions := _listed(request, "match[spec_version]"):
        rows = rows.filter(spec_version__in=spec_versions)
    return _versions_selected(rows, _listed(request, "match[version]") or ["last"])


def _versions_selected(rows, wanted: list[str]):
    selected = Q(pk__in=[])
    stamps = [
        _parse_timestamp(value, "match[version]") for value in wanted if value not in ("last", "first", "all")
    ]
    if "all" in wanted:
        return rows
    if "last" in wanted:
        selected |= Q(is_latest=True)
    if "first" in wanted:
        first = StixObject.objects.filter(collection=OuterRef("collection"), stix_id=OuterRef("stix_id"))
        earliest = first.values("stix_id").annotate(first=Min("version")).values("first")
        selected |= Q(version=Subquery(earliest))
    if stamps:
        selected |= Q(version__in=stamps)
    return rows.filter(selected)


def _listed(request: HttpRequest, name: str) -> list[str]:
    return [item for value in request.GET.getlist(name) for item in value.split(",") if item]


def _page(request: HttpRequest, rows) -> tuple[list[StixObject], bool]:
    if "next" in request.GET:
        stamp, pk = _cursor(request.GET["next"])
        rows = rows.filter(Q(date_added__gt=stamp) | Q(date_added=stamp, pk__gt=pk))
    limit = _limit(request)
    page = list(rows.order_by("date_added", "pk")[: limit + 1])
    return page[:limit], len(page) > limit


def _page_headers(page: list[StixObject]) -> dict:
    if not page:
        return {}
    return {
        "X-TAXII-Date-Added-First": _format(page[0].date_added),
        "X-TAXII-Date-Added-Last": _format(page[-1].date_added),
    }


def _envelope(page: list[StixObject], more: bool) -> bytes:
    """The envelope around stored JSON, joined as bytes without decoding a single object."""
    head = {"more": more} | ({"next": _next_token(page[-1])} if more else {})
    prefix = orjson.dumps(head)[:-1]
    if not page:
        return prefix + b"}"
    return prefix + b',"objects":[' + ",".join(row.body for row in page).encode() + b"]}"


@taxii_endpoint("GET", "POST")
def objects(request: HttpRequest, collection_id):
    if collection_id in VIEW_COLLECTIONS:
        return _view_objects(request, VIEW_COLLECTIONS[collection_id])
    if request.method == "POST":
        refusal = _("You may not add objects to this collection.")
        return _add_objects(request, _writable_collection(request, collection_id, refusal))
    found = _collection(request, collection_id)
    page, more = _page(request, _matching(request, found).only("pk", "date_added", "body"))
    return _answer(_envelope(page, more), headers=_page_headers(page))


@taxii_endpoint("GET", "DELETE")
def object_detail(request: HttpRequest, collection_id, object_id: str):
    if collection_id in VIEW_COLLECTIONS:
        return _view_objects(request, VIEW_COLLECTIONS[collection_id], object_id=object_id)
    if request.method == "DELETE":
        refusal = _("You may not delete objects from this collection.")
        return _delete_object(request, _writable_collection(request, collection_id, refusal), object_id)
    rows = _matching(request, _collection(request, collection_id), object_id=object_id)
    page, more = _page(request, rows.only("pk", "date_added", "body"))
    if not page:
        raise TaxiiError(404, _("No such object."))
    return _answer(_envelope(page, more), headers=_page_headers(page))


def _delete_object(request: HttpRequest, found: Collection, object_id: str) -> HttpResponse:
    rows = _matching(request, found, object_id=object_id)
    with transaction.atomic():
        doomed = list(rows.values_list("pk", flat=True))
        deleted, _detail = StixObject.objects.filter(pk__in=doomed).delete()
        forget_sightings(SourceKind.STIX, doomed)
        _mark_newest(found, object_id)
    if not deleted:
        raise TaxiiError(404, _("No such object."))
    return _answer(b"", 200)


def _mark_newest(found: Collection, object_id: str) -> None:
    """After a deletion, the newest remaining version is the current one again."""
    remaining = StixObject.objects.filter(collection=found, stix_id=object_id).order_by("-version")
    newest = remaining.first()
    if newest is not None and not newest.is_latest:
        remaining.filter(pk=newest.pk).update(is_latest=True)


@taxii_endpoint("GET")
def versions(request: HttpRequest, collection_id, object_id: str):
    if collection_id in VIEW_COLLECTIONS:
        return _view_objects(request, VIEW_COLLECTIONS[collection_id], object_id=object_id, answer="versions")
    found = _collection(request, collection_id)
    rows = restrict(StixObject.objects.filter(collection=found, stix_id=object_id), request.user)
    if "added_after" in request.GET:
        rows = rows.filter(date_added__gt=_parse_timestamp(request.GET["added_after"], "added_after"))
    if spec_versions := _listed(request, "match[spec_version]"):
        rows = rows.filter(spec_version__in=spec_versions)
    page, more = _page(request, rows.only("pk", "date_added", "version"))
    if not page:
        raise TaxiiError(404, _("No such object."))
    body = {"more": more, "versions": sorted(_format(row.version) for row in page)}
    if more:
        body["next"] = _next_token(page[-1])
    return _answer(body, headers=_page_headers(page))


@taxii_endpoint("GET")
def manifest(request: HttpRequest, collection_id):
    if collection_id in VIEW_COLLECTIONS:
        return _view_objects(request, VIEW_COLLECTIONS[collection_id], answer="manifest")
    found = _collection(request, collection_id)
    page, more = _page(request, _matching(request, found).only("pk", "stix_id", "date_added", "version"))
    body = {
        "more": more,
        "objects": [
            {
                "id": row.stix_id,
                "date_added": _format(row.date_added),
                "version": _format(row.version),
                "media_type": STIX_MEDIA_TYPE,
            }
            for row in page
        ],
    }
    if more:
        body["next"] = _next_token(page[-1])
    if not page:
        del body["objects"]
    return _answer(body, headers=_page_headers(page))


def _add_objects(request: HttpRequest, found: Collection) -> HttpResponse:
    media = request.headers.get("Content-Type", "").replace(" ", "").lower()
    if media not in (TAXII_MEDIA_TYPE, "application/taxii+json"):
        raise TaxiiError(415, _("Send objects as %(media)s.") % {"media": TAXII_MEDIA_TYPE}, media)
    raw = request.read(MAX_BUNDLE_BYTES + 1)
    if len(raw) > MAX_BUNDLE_BYTES:
        raise TaxiiError(413, _("The envelope is larger than %(limit)d bytes.") % {"limit": MAX_BUNDLE_BYTES})
    try:
        parsed = parse_envelope(raw, max_bytes=MAX_BUNDLE_BYTES)
    except BundleRejected as error:
        raise TaxiiError(400, _("The envelope was rejected."), str(error)) from None
    status = ingest(
        found, parsed.objects, failures=[Failure(*failure) for failure in parsed.failures], user=request.user
    )
    return _answer(status_resource(status), 202)


def status_resource(status: IngestStatus) -> dict:
    return {
        "id": str(status.id),
        "status": "complete",
        "request_timestamp": _format(status.requested_at),
        "total_count": status.total_count,
        "success_count": status.success_count,
        "successes": status.successes,
        "failure_count": status.failure_count,
        "failures": status.failures,
        "pending_count": 0,
        "pendings": [],
    }


@taxii_endpoint("GET")
def status(request: HttpRequest, status_id):
    try:
        found = get_restricted_or_404(IngestStatus.objects.all(), request.user, pk=status_id)
    except Http404 as error:
        raise TaxiiError(404, _("No such status.")) from error
    return _answer(status_resource(found))


def _view_objects(
    request: HttpRequest, view: ViewCollection, *, object_id: str | None = None, answer: str = "objects"
):
    """Objects, an object, its versions or the manifest of a view collection (one version each)."""
    if request.method != "GET":
        raise TaxiiError(403, _("This collection is read-only."))
    added_after = request.GET.get("added_after")
    items = view.visible(
        request.user,
        added_after=_parse_timestamp(added_after, "added_after") if added_after else None,
        after=_cursor(request.GET["next"], key_type=uuid.UUID) if "next" in request.GET else None,
    )
    ids = set(_listed(request, "match[id]")) | ({object_id} if object_id else set())
    types = set(_listed(request, "match[type]"))
    spec_versions = set(_listed(request, "match[spec_version]"))
    stamps = {
        _parse_timestamp(value, "match[version]")
        for value in _listed(request, "match[version]")
        if value not in ("last", "first", "all")
    }

    def keep(obj: dict) -> bool:
        version = obj.get("modified") or obj.get("created")
        return (
            (not ids or obj["id"] in ids)
            and (not types or obj["type"] in types)
            and (not spec_versions or obj.get("spec_version") in spec_versions)
            and (not stamps or (version is not None and dt.datetime.fromisoformat(version) in stamps))
        )

    page, more = view.objects_page(items, limit=_limit(request), keep=keep)
    # What several items share (an issuer, a sector, the marking definitions) is sent once a page.
    unique = list({(obj["id"], obj.get("modified")): (item, obj) for item, obj in page}.values())
    if object_id is not None and not unique:
        raise TaxiiError(404, _("No such object."))
    headers = {}
    if unique:
        headers = {
            "X-TAXII-Date-Added-First": _format(view.added(unique[0][0])),
            "X-TAXII-Date-Added-Last": _format(view.added(page[-1][0])),
        }
    body: dict = {"more": more}
    if more:
        body["next"] = _token(view.added(page[-1][0]), page[-1][0].pk)
    if answer == "versions":
        stamps_held = (obj.get("modified") or obj.get("created") for _item, obj in unique)
        body["versions"] = sorted(
            {_format(dt.datetime.fromisoformat(stamp)) for stamp in stamps_held if stamp}
        )
    elif answer == "manifest" and unique:
        body["objects"] = [
            {
                "id": obj["id"],
                "date_added": _format(view.added(item)),
                "version": obj.get("modified") or obj.get("created"),
                "media_type": STIX_MEDIA_TYPE,
            }
            for item, obj in unique
        ]
    elif answer == "objects" and unique:
        body["objects"] = [obj for _item, obj in unique]
    return _answer(body, headers=headers)
