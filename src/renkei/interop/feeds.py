"""TAXII 2.1 feeds: remote collections that Renkei polls into collections of its own.

An administrator registers a remote collection with its credentials (kept encrypted), how often to
poll it, and the TLP label and audience that every imported object then carries. Each poll asks only
for what the remote added since the last one (`added_after`), checks every object like an upload,
stores it through `ingest` (which never stores an id and version twice) and is recorded as a FeedRun.

How far a feed has read: TAXII 2.1 (§3.4.2) answers every page of objects with the header
X-TAXII-Date-Added-Last, the date_added of the page's last object on the remote's own clock. That is
the only safe watermark (our clock and the objects' own timestamps say nothing about when the remote
added them), so it is read from each response, and from the manifest when a server leaves it out.
"""

import base64
import datetime as dt
import itertools
import logging
from dataclasses import dataclass, field

import requests
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tasks import task
from taxii2client.exceptions import TAXIIServiceException
from taxii2client.v21 import Collection as RemoteCollection
from taxii2client.v21 import as_pages

from renkei.audit.models import AuditAction
from renkei.audit.services import audit_write, snapshot
from renkei.core import outbound
from renkei.directory.models import Organization, User
from renkei.interop.collection_sharing import (
    Sharing,
    check,
    check_administrator,
    sharing_apply,
    sharing_check,
    sharing_of,
    sharing_snapshot,
)
from renkei.interop.models import Collection, FeedRun, StixObject, TaxiiFeed
from renkei.interop.services import Failure, ingest
from renkei.interop.stix_validation import BundleRejected, check_objects

logger = logging.getLogger(__name__)

# Objects asked for per request; a server may answer with fewer.
PAGE = 500
# Pages read in one poll at most, so a server that always answers `more` cannot hold a worker for
# ever; a poll that stops here is carried on by the next one.
MAX_PAGES = 1000
# Seconds to wait for a remote server to connect or answer, so a silent one cannot hold a worker.
REMOTE_TIMEOUT = 60
# Rejections kept on a run: enough to see what is wrong with a feed.
RUN_FAILURES_KEPT = 100
# Ids asked about in one manifest request, keeping its address well under common URL limits.
MANIFEST_IDS = 50
DATE_ADDED_FIRST = "X-TAXII-Date-Added-First"
DATE_ADDED_LAST = "X-TAXII-Date-Added-Last"
# Never copied into the audit trail, even encrypted.
SECRET_FIELDS = ("secret_encrypted",)


# --- Credentials at rest ------------------------------------------------------------------------


def _fernet() -> Fernet:
    """The key: settings.RENKEI_FEED_KEY (a Fernet key) if set, else one derived from SECRET_KEY.

    Rotating either makes the stored passwords unreadable: feeds then fail with a message asking for
    the password again, and an administrator re-enters it on the feed's settings page.
    """
    configured = getattr(settings, "RENKEI_FEED_KEY", "")
    if configured:
        return Fernet(configured)
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"renkei feed credentials").derive(
        settings.SECRET_KEY.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt_secret(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode() if secret else ""


def decrypt_secret(encrypted: str) -> str:
    """The plaintext; raises cryptography.fernet.InvalidToken when the key has changed since."""
    return _fernet().decrypt(encrypted.encode()).decode() if encrypted else ""


# --- Registering feeds --------------------------------------------------------------------------


@dataclass(kw_only=True)
class FeedSettings(Sharing):
    """What an administrator chooses for a feed. `secret` blank on an update keeps the stored one."""

    name: str
    url: str
    username: str = ""
    secret: str = ""
    poll_minutes: int = 60
    active: bool = True


def _validate(data: FeedSettings) -> None:
    check(bool(data.name.strip()), _("A name is required."), "name")
    try:
        URLValidator(schemes=["http", "https"])(data.url)
    except ValidationError:
        check(False, _("Enter the collection's http:// or https:// address."), "url")
    if refused := outbound.refusal(data.url):
        raise ValidationError({"url": refused})
    check(data.poll_minutes >= 1, _("Poll at most once a minute."), "poll_minutes")
    sharing_check(data)


def _feed_snapshot(feed: TaxiiFeed) -> dict:
    return snapshot(feed, exclude=SECRET_FIELDS) | sharing_snapshot(feed.collection)


@transaction.atomic
def feed_create(*, actor: User, owner: Organization, data: FeedSettings) -> TaxiiFeed:
    """Register a remote collection, imported into a new collection of `owner`'s; first poll is due now."""
    check_administrator(actor, owner)
    _validate(data)
    collection = Collection.objects.create(owner=owner, title=data.name.strip())
    sharing_apply(collection, data)
    feed = TaxiiFeed.objects.create(
        name=data.name.strip(),
        url=data.url,
        username=data.username,
        secret_encrypted=encrypt_secret(data.secret),
        poll_minutes=data.poll_minutes,
        collection=collection,
        active=data.active,
        next_poll_at=timezone.now(),
        created_by=actor,
    )
    audit_write(actor=actor, action=AuditAction.CREATE, obj=feed, after=_feed_snapshot(feed))
    return feed


@transaction.atomic
def feed_update(*, actor: User, feed: TaxiiFeed, data: FeedSettings) -> TaxiiFeed:
    """Change a feed's settings. A changed address starts reading that collection from its beginning;
    a changed label or audience applies to every object already imported, since they share the
    collection."""
    feed = TaxiiFeed.objects.select_for_update().select_related("collection").get(pk=feed.pk)
    check_administrator(actor, feed.collection.owner)
    _validate(data)
    before = _feed_snapshot(feed)
    if data.url != feed.url:
        feed.added_after = ""
    if data.active and not feed.active:
        feed.next_poll_at = timezone.now()
    feed.name, feed.url, feed.username = data.name.strip(), data.url, data.username
    if data.secret:
        feed.secret_encrypted = encrypt_secret(data.secret)
    feed.poll_minutes, feed.active = data.poll_minutes, data.active
    feed.save()
    collection = feed.collection
    collection.title = feed.name
    collection.save(update_fields=["title"])
    sharing_apply(collection, data)
    audit_write(actor=actor, action=AuditAction.UPDATE, obj=feed, before=before, after=_feed_snapshot(feed))
    return feed


def feed_settings(feed: TaxiiFeed) -> FeedSettings:
    """A feed's current settings, its secret left blank (it is never shown again)."""
    return FeedSettings(
        name=feed.name,
        url=feed.url,
        username=feed.username,
        poll_minutes=feed.poll_minutes,
        active=feed.active,
        **sharing_of(feed.collection),
    )


# --- Polling ------------------------------------------------------------------------------------


class FeedError(Exception):
    """A poll that could not go on; its message is what the run records."""


def _remote(feed: TaxiiFeed, password: str) -> tuple[RemoteCollection, list]:
    """The remote collection, and a list that receives the headers of each HTTP response.

    taxii2-client returns only the parsed body, so the X-TAXII-Date-Added-* headers are read with a
    requests response hook on its session. Only the headers are kept: a response kept whole would
    keep its connection open after the poll.
    """
    remote = RemoteCollection(feed.url, user=feed.username or None, password=password or None)
    session = outbound.session(timeout=REMOTE_TIMEOUT, into=remote._conn.session)
    headers: list = []
    session.hooks["response"].append(lambda response, *args, **kwargs: headers.append(response.headers))
    return remote, headers


def _parse_stamp(value: str | None) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    return parsed if parsed is not None and parsed.tzinfo is not None else None


def _page_bounds(remote: RemoteCollection, headers, objects: list[dict]) -> tuple[str, str]:
    """The remote's date_added of the page's first and last objects, as it wrote them ("" if unknown)."""
    first, last = headers.get(DATE_ADDED_FIRST, ""), headers.get(DATE_ADDED_LAST, "")
    if _parse_stamp(first) and _parse_stamp(last):
        return first, last
    if not objects:
        return "", ""
    # A server that leaves the headers out still lists date_added in its manifest.
    ids = list(dict.fromkeys(obj["id"] for obj in objects if isinstance(obj.get("id"), str)))
    stamps = [
        item["date_added"]
        for start in range(0, len(ids), MANIFEST_IDS)
        for page in as_pages(
            remote.get_manifest, per_request=PAGE, id=",".join(ids[start : start + MANIFEST_IDS])
        )
        for item in page.get("objects", [])
        if _parse_stamp(item.get("date_added"))
    ]
    if not stamps:
        raise FeedError(
            _("The remote server tells neither in headers nor in its manifest when it added objects.")
        )
    return min(stamps, key=_parse_stamp), max(stamps, key=_parse_stamp)


@dataclass
class _Progress:
    fetched: int = 0
    created: int = 0
    rejected: int = 0
    failures: list[dict] = field(default_factory=list)


def _store_page(feed: TaxiiFeed, objects: list, progress: _Progress, watermark: str) -> None:
    """Check and store one page, and advance the feed's watermark in the same transaction."""
    try:
        parsed = check_objects(objects)
    except BundleRejected as error:
        raise FeedError(
            _("The remote server sent an unusable page: %(reason)s") % {"reason": error}
        ) from None
    with transaction.atomic():
        if objects:  # an empty page records no import status
            # Lock the collection first, so the rows counted below are exactly those this ingest stored.
            Collection.objects.select_for_update().filter(pk=feed.collection_id).first()
            highest = StixObject.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
            ingest(
                feed.collection,
                parsed.objects,
                failures=[Failure(*failure) for failure in parsed.failures],
                user=None,
            )
            stored = StixObject.objects.filter(collection_id=feed.collection_id, pk__gt=highest)
            progress.created += stored.count()
        if watermark != feed.added_after:
            feed.added_after = watermark
            TaxiiFeed.objects.filter(pk=feed.pk).update(added_after=watermark)
    progress.rejected += len(parsed.failures)
    room = max(RUN_FAILURES_KEPT - len(progress.failures), 0)
    progress.failures += [
        {"id": stix_id, "version": version, "message": message}
        for stix_id, version, message in parsed.failures[:room]
    ]


def _read_remote(feed: TaxiiFeed, password: str, progress: _Progress) -> None:
    remote, headers = _remote(feed, password)
    with remote:  # closes the pooled connections, which would otherwise outlive the poll
        filters = {"added_after": feed.added_after} if feed.added_after else {}
        previous_last = None
        pages = as_pages(remote.get_objects, per_request=PAGE, **filters)
        for envelope in itertools.islice(pages, MAX_PAGES):
            objects = envelope.get("objects", []) if isinstance(envelope, dict) else None
            if not isinstance(objects, list):
                raise FeedError(_("The remote server did not answer with a TAXII envelope."))
            progress.fetched += len(objects)
            first, last = _page_bounds(remote, headers[-1], objects)
            # Objects added at the same instant may straddle two pages; `added_after` is strict, so the
            # watermark only moves past an instant once every object added then has been stored.
            watermark = feed.added_after
            if previous_last and first and _parse_stamp(first) > _parse_stamp(previous_last):
                watermark = previous_last
            if not envelope.get("more") and last:
                watermark = last
            _store_page(feed, objects, progress, watermark)
            previous_last = last or previous_last


def _describe(error: Exception) -> str:
    if isinstance(error, FeedError | outbound.OutboundRefused):
        return str(error)
    if isinstance(error, InvalidToken):
        return _("The stored password can no longer be read (the key has changed): enter it again.")
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return _("The remote server answered %(status)d %(reason)s.") % {
            "status": error.response.status_code,
            "reason": error.response.reason,
        }
    if isinstance(error, requests.ConnectionError | requests.Timeout):
        return _("Could not reach the remote server: %(error)s") % {"error": error}
    if isinstance(error, TAXIIServiceException | ValueError):
        return _("The remote server's answer is not TAXII 2.1: %(error)s") % {"error": error}
    return _("The poll failed: %(error)s") % {"error": error}


def feed_poll(feed: TaxiiFeed) -> FeedRun:
    """Poll the feed once and record the run. Never raises: a failure is the run's `error`.

    Every page is stored and the watermark advanced in one transaction, so a poll that fails half-way
    keeps what it stored and the next one carries on from there.
    """
    feed = TaxiiFeed.objects.select_related("collection__owner").get(pk=feed.pk)
    run = FeedRun.objects.create(feed=feed, started_at=timezone.now())
    progress = _Progress()
    try:
        _read_remote(feed, decrypt_secret(feed.secret_encrypted), progress)
    except Exception as error:  # a feed's failure is recorded, never passed on to the worker
        if not isinstance(
            error,
            FeedError
            | InvalidToken
            | outbound.OutboundRefused
            | requests.RequestException
            | TAXIIServiceException,
        ):
            logger.exception("Polling feed %s failed", feed.pk)
        run.error = _describe(error)
    run.finished_at = timezone.now()
    run.fetched, run.created, run.rejected = progress.fetched, progress.created, progress.rejected
    run.failures = progress.failures
    run.save()
    TaxiiFeed.objects.filter(pk=feed.pk).update(
        next_poll_at=run.finished_at + dt.timedelta(minutes=feed.poll_minutes)
    )
    return run


@task()
def feed_poll_task(feed_id: str) -> int | None:
    """Poll one feed; returns how many objects it stored (None if the feed is gone or switched off)."""
    feed = TaxiiFeed.objects.filter(pk=feed_id, active=True).first()
    if feed is None:
        return None
    return feed_poll(feed).created


def feeds_due() -> list[TaxiiFeed]:
    now = timezone.now()
    return list(
        TaxiiFeed.objects.filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now), active=True)
    )


def feeds_due_enqueue() -> int:
    """Queue a poll of every active feed that is due; returns how many were queued.

    Each is pushed a full interval ahead first, so the next upkeep does not queue it again while it
    waits for a worker (the poll sets the time again when it finishes).
    """
    queued = 0
    now = timezone.now()
    for feed in feeds_due():
        claimed = (
            TaxiiFeed.objects.filter(pk=feed.pk)
            .filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now))
            .update(next_poll_at=now + dt.timedelta(minutes=feed.poll_minutes))
        )
        if claimed:
            feed_poll_task.enqueue(str(feed.pk))
            queued += 1
    return queued
