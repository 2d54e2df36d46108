"""Signed webhooks: organizations register an http(s) URL and receive each advisory addressed to them.

Every delivery is a POST of a small JSON document (type, id, title, severity, tlp, issued_at,
issuer, url, observables, and attachments as name, size, sha256 and API download url — the
advisory's body stays behind the link, the files behind an API token) with the headers

    X-Renkei-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the endpoint's secret>
    X-Renkei-Delivery:  <uuid, the same on every retry of one delivery, so receivers can deduplicate>
    X-Renkei-Timestamp: <unix seconds of this attempt>

A 2xx answer is success. Anything else (including redirects, which are not followed) is retried
with backoff, 5 attempts in all (after 1 min, 5 min, 30 min, 2 h); every attempt is a
WebhookAttempt row. Only http and https URLs are accepted, and never to an address
RENKEI_OUTBOUND_DENY lists (renkei.core.outbound; loopback and link-local by default). Private
addresses are allowed on purpose: Renkei runs inside closed government and operator networks where
the receivers live on private addresses.
"""

import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
import uuid

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from renkei.audit.models import AuditAction
from renkei.audit.services import audit_write, snapshot
from renkei.core import outbound
from renkei.core.choices import Action
from renkei.directory.models import Organization
from renkei.sharing.models import Advisory, WebhookAttempt, WebhookEndpoint

SIGNATURE_HEADER = "X-Renkei-Signature"
DELIVERY_HEADER = "X-Renkei-Delivery"
TIMESTAMP_HEADER = "X-Renkei-Timestamp"
TIMEOUT_SECONDS = 10
# Waits before attempts 2, 3, 4 and 5.
BACKOFF = (
    dt.timedelta(minutes=1),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
ERROR_MAX_CHARS = 500


def webhook_register(*, actor, organization: Organization, url: str) -> tuple[WebhookEndpoint, str]:
    """Register `url` for `organization`; returns the endpoint and its signing secret (shown once).

    `actor` must administer the organization; `None` is the server operator at the command line.
    """
    if (
        actor is not None
        and not Organization.objects.restrict(actor, Action.CHANGE).filter(pk=organization.pk).exists()
    ):
        raise ValidationError(_("You may not manage this organization's webhooks."), code="forbidden")
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError as error:
        raise ValidationError(
            {"url": [ValidationError(_("Enter an http:// or https:// URL."), code="url")]}
        ) from error
    if refused := outbound.refusal(url):
        raise ValidationError({"url": [ValidationError(refused, code="refused")]})
    secret = secrets.token_hex(32)
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(organization=organization, url=url, secret=secret)
        audit_write(
            actor=actor,
            action=AuditAction.CREATE,
            obj=endpoint,
            after=snapshot(endpoint, exclude=("secret",)),
        )
    return endpoint, secret


def payload(advisory: Advisory) -> bytes:
    """The JSON body for `advisory`: only what every organization in its audience may see."""
    from renkei.sharing.delivery import absolute_url

    document = {
        "type": "advisory",
        "id": str(advisory.pk),
        "title": advisory.title,
        "severity": advisory.severity,
        "tlp": advisory.tlp,
        "issued_at": advisory.created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "issuer": advisory.issuer.name_ja,
        "url": absolute_url("advisory_detail", advisory.pk),
        "observables": [{"type": o.type, "value": o.value} for o in advisory.observables.all()],
        "attachments": [
            {
                "name": attachment.filename,
                "size": attachment.blob.size,
                "sha256": attachment.blob_id,
                "url": absolute_url(
                    "advisory_attachment_download", advisory.pk, attachment.pk, namespace="api"
                ),
            }
            for attachment in advisory.attachments.select_related("blob")
        ],
    }
    return json.dumps(document, ensure_ascii=False, sort_keys=True).encode()


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def queue_webhooks(advisory: Advisory) -> int:
    """One delivery task per active endpoint of each organization in the advisory's audience."""
    from renkei.sharing.delivery import advisory_audience_organizations
    from renkei.sharing.tasks import webhook_deliver

    endpoints = WebhookEndpoint.objects.filter(
        active=True, organization__in=advisory_audience_organizations(advisory)
    ).values_list("pk", flat=True)
    count = 0
    for endpoint_id in endpoints:
        webhook_deliver.enqueue(
            endpoint_id=endpoint_id, advisory_id=str(advisory.pk), attempt=1, delivery_id=str(uuid.uuid4())
        )
        count += 1
    return count


_session = outbound.session(timeout=TIMEOUT_SECONDS)


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    # A redirect is answered as an error: the receiver must give its real URL.
    return _session.post(url, data=body, headers=headers, allow_redirects=False).status_code


def deliver(*, endpoint_id: int, advisory_id: str, attempt: int, delivery_id: str) -> bool:
    """One attempt; on failure queue the next one after the backoff. True when delivered."""
    from renkei.sharing.delivery import advisory_audience_organizations
    from renkei.sharing.tasks import webhook_deliver

    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, active=True).first()
    advisory = Advisory.objects.select_related("issuer").filter(pk=advisory_id).first()
    if endpoint is None or advisory is None:
        return False
    # The audience is checked again at each attempt: an organization removed meanwhile gets nothing.
    if not advisory_audience_organizations(advisory).filter(pk=endpoint.organization_id).exists():
        return False
    body = payload(advisory)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Renkei-Webhook/1",
        SIGNATURE_HEADER: signature(endpoint.secret, body),
        DELIVERY_HEADER: delivery_id,
        TIMESTAMP_HEADER: str(int(time.time())),
    }
    status_code, error = None, ""
    try:
        status_code = _post(endpoint.url, body, headers)
    except (OSError, ValueError, outbound.OutboundRefused) as failure:  # requests' errors are OSErrors
        error = (str(failure) or type(failure).__name__)[:ERROR_MAX_CHARS]
    delivered = status_code is not None and 200 <= status_code < 300
    WebhookAttempt.objects.create(
        endpoint=endpoint, advisory=advisory, attempt=attempt, status_code=status_code, error=error
    )
    if not delivered and attempt < MAX_ATTEMPTS:
        webhook_deliver.using(run_after=timezone.now() + BACKOFF[attempt - 1]).enqueue(
            endpoint_id=endpoint_id, advisory_id=advisory_id, attempt=attempt + 1, delivery_id=delivery_id
        )
    return delivered
