"""TAXII feeds, polled from two real remotes: Renkei's own TAXII server on a live server, and the OASIS
reference server medallion (memory backend) on a werkzeug server in a thread."""

import copy
import io
import json
import socket
import threading
import uuid
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import translation
from django_tasks_db.models import DBTaskResult
from medallion import application_instance, register_blueprints
from medallion.backends.memory_backend import MemoryBackend
from medallion.common import get_timestamp
from werkzeug.serving import make_server

from renkei.audit.models import AuditRecord
from renkei.correlation.choices import SourceKind
from renkei.correlation.models import Sighting
from renkei.interop import feeds
from renkei.interop.feeds import (
    FeedSettings,
    decrypt_secret,
    feed_create,
    feed_poll,
    feed_update,
    feeds_due_enqueue,
)
from renkei.interop.models import CollectionAudience, IngestStatus, StixObject, TaxiiFeed
from renkei.interop.services import ingest, submissions_collection
from renkei.interop.tests.stix_objects import indicator
from renkei.sharing.tests.access_oracle import signed_in

# The remote servers here listen on loopback, which RENKEI_OUTBOUND_DENY lists by default.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loopback_allowed")]

MEDALLION_ROOT = "trustgroup1"
MEDALLION_COLLECTION = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"


@pytest.fixture(autouse=True)
def _english(_default_language):
    """Runs record their errors in the active language; the messages below are asserted in English."""
    translation.activate("en")


@pytest.fixture
def small_pages(monkeypatch):
    """Two objects a request, so that every poll below pages."""
    monkeypatch.setattr(feeds, "PAGE", 2)


@pytest.fixture
def renkei_remote(live_server, token_of, community):
    """Renkei's own TAXII server as the remote: the hospital's submissions, read with a hospital token."""
    collection = submissions_collection(community.hospital)
    ingest(collection, [indicator(number) for number in range(5)], user=community.hospital_reporter)

    class Remote:
        url = f"{live_server.url}/taxii2/api/collections/{collection.pk}/"
        username = community.hospital_reporter.username
        password = token_of(community.hospital_reporter)

        @staticmethod
        def add(*objects):
            ingest(collection, list(objects), user=community.hospital_reporter)

    return Remote


def _manifest_entry(obj: dict, added: str) -> dict:
    return {
        "id": obj["id"],
        "date_added": added,
        "version": obj["modified"],
        "media_type": "application/stix+json;version=2.1",
    }


@pytest.fixture
def medallion_remote():
    """medallion serving one collection with three valid indicators and two invalid ones, which it
    serves as they are: it does not validate what it holds."""
    broken_pattern = indicator(203, pattern="[ipv4-addr:value = '198.51.100.203'")
    no_pattern_type = {key: value for key, value in indicator(204).items() if key != "pattern_type"}
    stored = [indicator(200), indicator(201), broken_pattern, indicator(202), no_pattern_type]
    data = {
        "/discovery": {
            "title": "medallion",
            "default": f"/{MEDALLION_ROOT}/",
            "api_roots": [f"/{MEDALLION_ROOT}/"],
        },
        MEDALLION_ROOT: {
            "information": {
                "title": "Trust group 1",
                "versions": ["application/taxii+json;version=2.1"],
                "max_content_length": 9765625,
            },
            "status": [],
            "collections": [
                {
                    "id": MEDALLION_COLLECTION,
                    "title": "Partner indicators",
                    "can_read": True,
                    "can_write": True,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": copy.deepcopy(stored),
                    "manifest": [
                        _manifest_entry(obj, f"2026-11-02T00:00:0{second}.000000Z")
                        for second, obj in enumerate(stored)
                    ],
                }
            ],
        },
    }
    if not application_instance.blueprints:
        register_blueprints(application_instance)
    application_instance.users_backend = {"partner": "s3cret"}
    application_instance.taxii_config = {"max_page_size": 100}
    backend = MemoryBackend()
    backend.data = data
    application_instance.medallion_backend = backend
    server = make_server("127.0.0.1", 0, application_instance, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    class Remote:
        url = f"http://127.0.0.1:{server.server_port}/{MEDALLION_ROOT}/collections/{MEDALLION_COLLECTION}/"
        username, password = "partner", "s3cret"

        @staticmethod
        def add(*objects):
            backend.add_objects(
                MEDALLION_ROOT, MEDALLION_COLLECTION, {"objects": list(objects)}, get_timestamp()
            )

    yield Remote
    server.shutdown()
    thread.join()


def _feed(community, remote, *, password=None, **choices) -> TaxiiFeed:
    data = FeedSettings(
        name="Partner feed",
        url=remote.url,
        username=remote.username,
        secret=remote.password if password is None else password,
        poll_minutes=30,
        **choices,
    )
    return feed_create(actor=community.bank_a_admin, owner=community.bank_a, data=data)


def _stored(feed: TaxiiFeed) -> list[str]:
    return sorted(StixObject.objects.filter(collection=feed.collection).values_list("stix_id", flat=True))


def _ids(*numbers: int) -> list[str]:
    return sorted(indicator(number)["id"] for number in numbers)


def test_polling_renkei_fetches_everything_then_only_what_is_new(renkei_remote, community, small_pages):
    feed = _feed(community, renkei_remote)

    first = feed_poll(feed)
    assert (first.error, first.fetched, first.created, first.rejected) == ("", 5, 5, 0)
    assert first.finished_at is not None
    assert _stored(feed) == _ids(0, 1, 2, 3, 4)
    feed.refresh_from_db()
    assert feed.added_after  # the remote's X-TAXII-Date-Added-Last
    assert feed.next_poll_at > first.finished_at
    writes = IngestStatus.objects.filter(collection=feed.collection)
    assert {write.requested_by_id for write in writes} == {None}, "a feed's writes are nobody's"
    assert sum(write.success_count for write in writes) == 5

    nothing_new = feed_poll(feed)
    assert (nothing_new.error, nothing_new.fetched, nothing_new.created) == ("", 0, 0)

    renkei_remote.add(indicator(5), indicator(6), indicator(7))
    newer = feed_poll(feed)
    assert (newer.error, newer.fetched, newer.created) == ("", 3, 3)
    assert _stored(feed) == _ids(0, 1, 2, 3, 4, 5, 6, 7)

    # Reading the whole remote again stores nothing twice.
    TaxiiFeed.objects.filter(pk=feed.pk).update(added_after="")
    again = feed_poll(feed)
    assert (again.fetched, again.created) == (8, 0)
    assert StixObject.objects.filter(collection=feed.collection).count() == 8
    assert list(feed.runs.values_list("created", flat=True)) == [0, 3, 0, 5]


def test_without_date_added_headers_the_manifest_tells_how_far_was_read(
    renkei_remote, community, small_pages, monkeypatch
):
    monkeypatch.setattr(feeds, "DATE_ADDED_FIRST", "X-Not-Sent-First")
    monkeypatch.setattr(feeds, "DATE_ADDED_LAST", "X-Not-Sent-Last")
    feed = _feed(community, renkei_remote)
    assert (feed_poll(feed).created, feed_poll(feed).fetched) == (5, 0)
    renkei_remote.add(indicator(5))
    run = feed_poll(feed)
    assert (run.error, run.fetched, run.created) == ("", 1, 1)


def test_a_newer_version_on_the_remote_is_fetched_and_supersedes(renkei_remote, community):
    feed = _feed(community, renkei_remote)
    feed_poll(feed)
    renkei_remote.add(indicator(1, modified="2026-11-03T00:00:00.000Z", name="C2 server 1 (confirmed)"))
    run = feed_poll(feed)
    assert (run.fetched, run.created) == (1, 1)
    newest = StixObject.objects.get(collection=feed.collection, stix_id=indicator(1)["id"], is_latest=True)
    assert json.loads(newest.body)["name"] == "C2 server 1 (confirmed)"


def test_polling_medallion_rejects_invalid_objects_and_reads_on_from_where_it_stopped(
    medallion_remote, community, small_pages
):
    feed = _feed(community, medallion_remote)

    first = feed_poll(feed)
    assert (first.error, first.fetched, first.created, first.rejected) == ("", 5, 3, 2)
    assert _stored(feed) == _ids(200, 201, 202)
    reasons = {failure["id"]: failure["message"] for failure in first.failures}
    assert set(reasons) == {indicator(203)["id"], indicator(204)["id"]}
    assert "pattern" in reasons[indicator(203)["id"]]
    assert "pattern_type" in reasons[indicator(204)["id"]]
    feed.refresh_from_db()
    assert feed.added_after == "2026-11-02T00:00:04.000000Z"

    nothing_new = feed_poll(feed)
    assert (nothing_new.error, nothing_new.fetched, nothing_new.created, nothing_new.rejected) == (
        "",
        0,
        0,
        0,
    )

    medallion_remote.add(indicator(205), indicator(206), indicator(207))
    newer = feed_poll(feed)
    assert (newer.error, newer.fetched, newer.created, newer.rejected) == ("", 3, 3, 0)
    assert _stored(feed) == _ids(200, 201, 202, 205, 206, 207)


def test_a_poll_stopped_at_the_page_limit_is_carried_on_by_the_next(
    medallion_remote, community, small_pages, monkeypatch
):
    monkeypatch.setattr(feeds, "MAX_PAGES", 2)
    feed = _feed(community, medallion_remote)
    first = feed_poll(feed)
    assert (first.fetched, first.created, first.rejected) == (4, 3, 1)
    feed.refresh_from_db()
    # Only what the second page proved complete: everything added up to the first page's last object.
    assert feed.added_after == "2026-11-02T00:00:01.000000Z"
    rest = feed_poll(feed)
    assert (rest.error, rest.fetched, rest.created, rest.rejected) == ("", 3, 0, 2)
    assert feed_poll(feed).fetched == 0
    assert _stored(feed) == _ids(200, 201, 202)


def test_a_wrong_password_is_a_failed_run_and_changes_nothing(renkei_remote, community):
    feed = _feed(community, renkei_remote, password="not-the-token")
    run = feed_poll(feed)
    assert "401" in run.error
    assert (run.fetched, run.created) == (0, 0)
    feed.refresh_from_db()
    assert feed.added_after == ""
    assert feed.next_poll_at > run.started_at
    assert not StixObject.objects.filter(collection=feed.collection).exists()


def test_a_missing_unreachable_or_non_taxii_remote_is_a_failed_run(
    medallion_remote, renkei_remote, community
):
    feed = _feed(community, medallion_remote)
    feed.url = medallion_remote.url.replace(MEDALLION_COLLECTION, str(uuid.uuid4()))
    feed.save()
    assert "404" in feed_poll(feed).error

    with _closed_port() as port:
        feed.url = f"http://127.0.0.1:{port}/taxii2/api/collections/{uuid.uuid4()}/"
        feed.save()
        assert "Could not reach" in feed_poll(feed).error

    feed.url = renkei_remote.url.split("/taxii2/")[0] + "/accounts/login/"  # an HTML page
    feed.save()
    assert "not TAXII 2.1" in feed_poll(feed).error
    assert feed.runs.count() == 3
    assert not StixObject.objects.filter(collection=feed.collection).exists()


@contextmanager
def _closed_port():
    """A local port that is bound but not listening: connecting to it is refused."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()[1]


def test_the_secret_is_stored_encrypted_and_never_audited(community, settings):
    settings.RENKEI_FEED_KEY = ""
    remote = SimpleNamespace(
        url="https://taxii.example.jp/api/collections/1/", username="partner", password="hunter2-secret"
    )
    feed = _feed(community, remote)
    assert "hunter2-secret" not in feed.secret_encrypted
    assert decrypt_secret(feed.secret_encrypted) == "hunter2-secret"
    record = AuditRecord.objects.get(object_type="interop.taxiifeed", object_id=str(feed.pk))
    assert "hunter2-secret" not in json.dumps(record.after)
    assert "secret_encrypted" not in record.after

    # A blank secret on an update keeps the stored one; a new one replaces it.
    changed = FeedSettings(name="Renamed", url=feed.url, username="partner", poll_minutes=15)
    feed = feed_update(actor=community.bank_a_admin, feed=feed, data=changed)
    assert decrypt_secret(feed.secret_encrypted) == "hunter2-secret"
    assert (feed.name, feed.collection.title, feed.poll_minutes) == ("Renamed", "Renamed", 15)
    changed.secret = "rotated"
    feed = feed_update(actor=community.bank_a_admin, feed=feed, data=changed)
    assert decrypt_secret(feed.secret_encrypted) == "rotated"


def test_a_configured_feed_key_is_used_and_a_changed_key_asks_for_the_password(
    community, settings, renkei_remote
):
    settings.RENKEI_FEED_KEY = Fernet.generate_key().decode()
    feed = _feed(community, renkei_remote)
    assert Fernet(settings.RENKEI_FEED_KEY).decrypt(feed.secret_encrypted.encode()).decode() == (
        renkei_remote.password
    )
    settings.RENKEI_FEED_KEY = Fernet.generate_key().decode()
    run = feed_poll(feed)
    assert "enter it again" in run.error


def test_imported_objects_carry_the_feeds_label_and_audience(renkei_remote, community):
    feed = _feed(
        community,
        renkei_remote,
        tlp="GREEN",
        audience=CollectionAudience.NAMED,
        sectors=[community.finance],
    )
    feed_poll(feed)
    assert feed.collection.tlp == "GREEN"
    for reader in (community.bank_b_reporter, community.bank_a_reporter):
        assert StixObject.objects.restrict(reader).filter(collection=feed.collection).count() == 5
    for outsider in (community.mhlw_coordinator, community.hospital_reporter):
        assert not StixObject.objects.restrict(outsider).filter(collection=feed.collection).exists()


def test_a_feed_on_a_metadata_service_is_refused_at_registration(community):
    data = FeedSettings(name="Feed", url="http://169.254.169.254/taxii2/api/collections/1/")
    with pytest.raises(ValidationError, match="RENKEI_OUTBOUND_DENY"):
        feed_create(actor=community.bank_a_admin, owner=community.bank_a, data=data)
    assert not TaxiiFeed.objects.exists()


def test_only_the_organizations_administrators_register_feeds(community):
    data = FeedSettings(name="Feed", url="https://taxii.example.jp/api/collections/1/")
    with pytest.raises(ValidationError, match="officers and administrators"):
        feed_create(actor=community.bank_a_reporter, owner=community.bank_a, data=data)
    with pytest.raises(ValidationError, match="Name who may read"):
        feed_create(
            actor=community.bank_a_admin,
            owner=community.bank_a,
            data=FeedSettings(name="Feed", url=data.url, audience=CollectionAudience.NAMED),
        )
    for tlp, audience, match in [
        ("AMBER+STRICT", {"all_ci": True}, "never go to whole groups"),
        ("RED", {"sectors": [community.finance]}, "never go to whole groups"),
        ("GREEN", {"organization_types": ["public"]}, "Only TLP:CLEAR"),
    ]:
        wide = FeedSettings(name="Feed", url=data.url, tlp=tlp, audience=CollectionAudience.NAMED, **audience)
        with pytest.raises(ValidationError, match=match):
            feed_create(actor=community.bank_a_admin, owner=community.bank_a, data=wide)
    assert not TaxiiFeed.objects.exists()


def test_due_feeds_are_queued_once_and_the_worker_polls_them(renkei_remote, community, run_worker):
    feed = _feed(community, renkei_remote)
    switched_off = _feed(community, renkei_remote)
    TaxiiFeed.objects.filter(pk=switched_off.pk).update(active=False)

    assert feeds_due_enqueue() == 1
    assert feeds_due_enqueue() == 0  # queued, not yet polled: not queued twice
    assert DBTaskResult.objects.filter(task_path__endswith=".feed_poll_task").count() == 1
    run_worker()
    run = feed.runs.get()
    assert (run.error, run.created) == ("", 5)
    assert not switched_off.runs.exists()
    # The poll's import queued the correlation indexing of what it stored, which the worker ran too.
    imported = StixObject.objects.filter(collection=feed.collection).values_list("pk", flat=True)
    indexed = Sighting.objects.filter(source_kind=SourceKind.STIX).values_list("source_id", flat=True)
    assert {str(pk) for pk in imported} <= set(indexed)


def test_pages_list_create_show_and_poll_for_an_administrator(renkei_remote, community):
    admin = signed_in(community.bank_a_admin)
    page = admin.get(reverse("interop:feed_create"))
    assert page.status_code == 200
    unaddressed = admin.post(
        reverse("interop:feed_create"),
        {"name": "Feed", "url": renkei_remote.url, "poll_minutes": "60", "tlp": "AMBER", "audience": "named"},
    )
    assert unaddressed.status_code == 200
    assert unaddressed.context["form"].errors.as_data()["__all__"][0].code == "no_audience"
    assert not TaxiiFeed.objects.exists()
    answer = admin.post(
        reverse("interop:feed_create"),
        {
            "name": "Hospital indicators",
            "url": renkei_remote.url,
            "username": renkei_remote.username,
            "secret": renkei_remote.password,
            "poll_minutes": "60",
            "tlp": "AMBER",
            "audience": CollectionAudience.CHAIN,
        },
    )
    feed = TaxiiFeed.objects.get()
    assert answer.status_code == 302
    assert answer["Location"] == reverse("interop:feed_detail", args=[feed.pk])
    assert decrypt_secret(feed.secret_encrypted) == renkei_remote.password
    assert feed.collection.owner == community.bank_a

    listed = admin.get(reverse("interop:feed_list")).content.decode()
    assert "Hospital indicators" in listed

    polled = admin.post(reverse("interop:feed_poll", args=[feed.pk]))
    assert polled.status_code == 302
    assert feed.runs.get().created == 5
    detail = admin.get(reverse("interop:feed_detail", args=[feed.pk])).content.decode()
    assert renkei_remote.password not in detail
    assert reverse("interop:feed_poll", args=[feed.pk]) in detail

    form = admin.get(reverse("interop:feed_edit", args=[feed.pk])).content.decode()
    assert renkei_remote.password not in form
    edited = admin.post(
        reverse("interop:feed_edit", args=[feed.pk]),
        {
            "name": "Hospital indicators",
            "url": renkei_remote.url,
            "username": renkei_remote.username,
            "secret": "",
            "poll_minutes": "120",
            "tlp": "GREEN",
            "audience": CollectionAudience.NAMED,
            "sectors": [community.finance.pk],
            "active": "on",
        },
    )
    assert edited.status_code == 302
    feed.refresh_from_db()
    assert (feed.poll_minutes, feed.collection.tlp) == (120, "GREEN")
    assert decrypt_secret(feed.secret_encrypted) == renkei_remote.password


def test_pages_are_not_found_for_everyone_else(renkei_remote, community):
    feed = _feed(community, renkei_remote)
    for outsider in (community.bank_a_reporter, community.bank_b_reporter, community.fsa_coordinator):
        client = signed_in(outsider)
        assert client.get(reverse("interop:feed_detail", args=[feed.pk])).status_code == 404
        assert client.get(reverse("interop:feed_edit", args=[feed.pk])).status_code == 404
        assert client.post(reverse("interop:feed_poll", args=[feed.pk])).status_code == 404
        assert client.get(reverse("interop:feed_create")).status_code == 404
        assert "Partner feed" not in client.get(reverse("interop:feed_list")).content.decode()
    assert not feed.runs.exists()


def test_the_command_polls_and_prints_a_summary(renkei_remote, community):
    feed = _feed(community, renkei_remote)
    out = io.StringIO()
    call_command("feeds", "poll", str(feed.pk), stdout=out)
    summary = out.getvalue()
    assert "Partner feed" in summary
    assert feed.runs.get().created == 5

    out = io.StringIO()
    TaxiiFeed.objects.filter(pk=feed.pk).update(next_poll_at=None)
    call_command("feeds", "poll", "--all-due", "--json", stdout=out)
    [run] = json.loads(out.getvalue())
    assert (run["name"], run["fetched"], run["created"], run["error"]) == ("Partner feed", 0, 0, "")

    with pytest.raises(CommandError, match="Unknown feed"):
        call_command("feeds", "poll", str(uuid.uuid4()), stdout=io.StringIO())
