"""Signed webhooks to a real HTTP receiver on 127.0.0.1 that checks the signature, retried with backoff."""

import datetime as dt
import hashlib
import io
import json
import socket

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from renkei.audit.models import AuditRecord
from renkei.core.services import token_create
from renkei.core.tests.worker import run_worker_until_idle as run_worker
from renkei.sharing.choices import Tlp
from renkei.sharing.models import AdvisoryAttachment, WebhookAttempt, WebhookEndpoint
from renkei.sharing.services import AttachmentInput, ObservableInput
from renkei.sharing.tests import delivery_support
from renkei.sharing.tests.delivery_support import (
    WEBHOOK_PAYLOAD_FIELDS,
    failed_tasks,
    make_deferred_tasks_ready,
)
from renkei.sharing.tests.factories import advisory_for
from renkei.sharing.webhooks import BACKOFF, MAX_ATTEMPTS, payload, signature, webhook_register

webhook_receiver = delivery_support.webhook_receiver


def pending_retries() -> list[DBTaskResult]:
    return list(
        DBTaskResult.objects.filter(
            task_path="renkei.sharing.tasks.webhook_deliver", status="READY"
        ).order_by("enqueued_at")
    )


def register(receiver, organization) -> WebhookEndpoint:
    endpoint, receiver.secret = webhook_register(actor=None, organization=organization, url=receiver.url)
    return endpoint


# --- Registration ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/hook", "http://169.254.169.254/latest/meta-data/"])
def test_a_webhook_to_this_host_or_a_metadata_service_is_refused(community, url):
    with pytest.raises(ValidationError, match="RENKEI_OUTBOUND_DENY"):
        webhook_register(actor=None, organization=community.bank_a, url=url)
    assert not WebhookEndpoint.objects.exists()


def test_an_organization_admin_registers_a_webhook_and_gets_its_secret_once(community):
    endpoint, secret = webhook_register(
        actor=community.bank_a_admin,
        organization=community.bank_a,
        url="https://hooks.sakura-bank.example.jp/renkei",
    )
    assert len(secret) == 64
    assert endpoint.secret == secret
    record = AuditRecord.objects.get(object_type="sharing.webhookendpoint", object_id=str(endpoint.pk))
    assert secret not in json.dumps(record.after), "the audit trail never holds the secret"


@pytest.mark.parametrize(
    "url", ["ftp://hooks.example.jp/", "javascript:alert(1)", "file:///etc/passwd", "hooks.example.jp", ""]
)
def test_only_http_and_https_urls_are_accepted(community, url):
    with pytest.raises(ValidationError) as error:
        webhook_register(actor=community.bank_a_admin, organization=community.bank_a, url=url)
    assert "url" in error.value.message_dict
    assert not WebhookEndpoint.objects.exists()


def test_only_the_organizations_administrators_register_webhooks(community):
    for outsider in (community.bank_a_reporter, community.bank_b_reporter):
        with pytest.raises(ValidationError):
            webhook_register(actor=outsider, organization=community.bank_a, url="https://hooks.example.jp/")
    assert not WebhookEndpoint.objects.exists()


def test_webhook_commands_print_the_secret_once_and_list_without_it(community):
    out = io.StringIO()
    call_command(
        "sharing", "webhook", "add", "さくら銀行", "https://hooks.sakura-bank.example.jp/renkei", stdout=out
    )
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret in out.getvalue()

    listing = io.StringIO()
    call_command("sharing", "webhook", "list", stdout=listing)
    assert "https://hooks.sakura-bank.example.jp/renkei" in listing.getvalue()
    assert "さくら銀行" in listing.getvalue()
    assert endpoint.secret not in listing.getvalue()

    as_json = io.StringIO()
    call_command("sharing", "webhook", "list", "--json", stdout=as_json)
    [row] = json.loads(as_json.getvalue())
    assert row["url"] == endpoint.url
    assert "secret" not in row


def test_webhook_add_refuses_unknown_organizations_and_bad_urls(community):
    with pytest.raises(CommandError, match="存在しない銀行"):
        call_command(
            "sharing", "webhook", "add", "存在しない銀行", "https://hooks.example.jp/", stdout=io.StringIO()
        )
    with pytest.raises(CommandError):
        call_command(
            "sharing", "webhook", "add", "さくら銀行", "ftp://hooks.example.jp/", stdout=io.StringIO()
        )
    assert not WebhookEndpoint.objects.exists()


# --- Payload and signature -------------------------------------------------------------------------


def test_the_payload_carries_only_the_summary_and_the_signature_covers_the_raw_body(community):
    advisory = advisory_for(community.nisc_coordinator, community.nisc, sectors=[community.finance])
    body = payload(advisory)
    document = json.loads(body)
    assert set(document) == WEBHOOK_PAYLOAD_FIELDS
    assert document["type"] == "advisory"
    assert document["id"] == str(advisory.pk)
    assert document["tlp"] == "AMBER"
    assert document["issuer"] == community.nisc.name_ja
    assert (document["observables"], document["attachments"]) == ([], [])
    assert advisory.body not in body.decode(), "the body stays behind the link"
    assert signature("s3cret", body) == signature("s3cret", body)
    assert signature("s3cret", body) != signature("other", body)
    assert signature("s3cret", body).startswith("sha256=")


# --- Delivery --------------------------------------------------------------------------------------


def test_an_advisory_is_pushed_to_the_audience_organizations_webhooks_only(
    community, inbox, webhook_receiver
):
    register(webhook_receiver, community.bank_a)
    with delivery_support.WebhookReceiver() as outsider:
        register(outsider, community.hospital)
        advisory = advisory_for(community.nisc_coordinator, community.nisc, sectors=[community.finance])
        run_worker()
        assert outsider.received == [], "the hospital is not in a finance advisory's audience"
    assert failed_tasks() == []

    [hook] = webhook_receiver.received
    assert hook.signature_valid
    assert hook.answered == 204
    assert hook.document["id"] == str(advisory.pk)
    assert set(hook.document) == WEBHOOK_PAYLOAD_FIELDS
    assert hook.headers["Content-Type"].startswith("application/json")
    assert hook.headers["X-Renkei-Delivery"]
    assert abs(int(hook.headers["X-Renkei-Timestamp"]) - timezone.now().timestamp()) < 60
    [attempt] = WebhookAttempt.objects.all()
    assert (attempt.attempt, attempt.status_code, attempt.error) == (1, 204, "")


def test_the_payload_lists_observables_and_links_attachments_for_api_download(
    community, inbox, webhook_receiver
):
    register(webhook_receiver, community.bank_a)
    content = b"seen_at,source\n2026-11-25T01:00:00Z,198.51.100.23\n"
    advisory = advisory_for(
        community.nisc_coordinator,
        community.nisc,
        tlp=Tlp.GREEN,
        sectors=[community.finance],
        observables=[
            ObservableInput("domain-name", "vpn-update.example"),
            ObservableInput("ipv4-addr", "198.51.100.23"),
        ],
        attachments=[AttachmentInput("侵入痕跡一覧.csv", "text/csv", content)],
    )
    run_worker()
    assert failed_tasks() == []

    [hook] = webhook_receiver.received
    assert hook.signature_valid and hook.answered == 204
    assert hook.document["observables"] == [
        {"type": "domain-name", "value": "vpn-update.example"},
        {"type": "ipv4-addr", "value": "198.51.100.23"},
    ]
    attachment = AdvisoryAttachment.objects.get(advisory=advisory)
    path = f"/api/v1/advisories/{advisory.pk}/attachments/{attachment.pk}"
    assert hook.document["attachments"] == [
        {
            "name": "侵入痕跡一覧.csv",
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
            "url": f"https://renkei.example.jp{path}",
        }
    ]
    # The receiver fetches the file with an API token of someone in its organization.
    _token, secret = token_create(actor=community.bank_a_admin, user=community.bank_a_admin)
    response = Client().get(path, headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == content


def test_red_advisories_are_never_pushed_to_organizations(community, inbox, webhook_receiver):
    register(webhook_receiver, community.bank_a)
    advisory_for(community.nisc_coordinator, community.nisc, tlp=Tlp.RED, people=[community.bank_a_admin])
    run_worker()
    assert webhook_receiver.received == []
    assert not WebhookAttempt.objects.exists()


def test_failed_deliveries_are_retried_with_backoff_under_one_delivery_id(community, inbox, webhook_receiver):
    webhook_receiver.fail_first = 2
    register(webhook_receiver, community.bank_a)
    advisory_for(community.nisc_coordinator, community.nisc, sectors=[community.finance])

    for attempt in (1, 2):
        before = timezone.now()
        run_worker()
        assert len(webhook_receiver.received) == attempt
        [retry] = pending_retries()
        assert retry.args_kwargs["kwargs"]["attempt"] == attempt + 1
        wait = retry.run_after - before
        assert BACKOFF[attempt - 1] <= wait < BACKOFF[attempt - 1] + dt.timedelta(seconds=30)
        make_deferred_tasks_ready()
    run_worker()

    assert [hook.answered for hook in webhook_receiver.received] == [500, 500, 204]
    assert all(hook.signature_valid for hook in webhook_receiver.received)
    assert len({hook.headers["X-Renkei-Delivery"] for hook in webhook_receiver.received}) == 1
    assert list(WebhookAttempt.objects.order_by("attempt").values_list("attempt", "status_code")) == [
        (1, 500),
        (2, 500),
        (3, 204),
    ]
    assert pending_retries() == []


def test_delivery_gives_up_after_the_last_attempt(community, inbox, webhook_receiver):
    webhook_receiver.fail_first = 100
    register(webhook_receiver, community.bank_a)
    advisory_for(community.nisc_coordinator, community.nisc, sectors=[community.finance])
    run_worker()
    while pending_retries():
        make_deferred_tasks_ready()
        run_worker()
    assert len(webhook_receiver.received) == MAX_ATTEMPTS == 5
    assert WebhookAttempt.objects.count() == MAX_ATTEMPTS


def test_an_unreachable_receiver_is_logged_and_retried(community, inbox, loopback_allowed):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    webhook_register(actor=None, organization=community.bank_a, url=f"http://127.0.0.1:{closed_port}/hook")
    advisory_for(community.nisc_coordinator, community.nisc, sectors=[community.finance])
    run_worker()
    [attempt] = WebhookAttempt.objects.all()
    assert attempt.status_code is None
    assert "refused" in attempt.error.lower()
    assert len(pending_retries()) == 1
