"""`Idempotency-Key` on every POST of the API: a repeated request gets the first answer.

A client that cannot tell whether a POST went through (a timeout, a dropped connection) sends it
again with the same `Idempotency-Key` header. The same key from the same user is then answered with
the first result, status and body, instead of acting twice. The same key with a different request
(another address or another body) is an error (422): replaying would answer a request that was not
made.

Two decorators work together. renkei/api.py installs both on the whole API:

- `run_in_transaction` wraps the whole operation (authentication, parsing, the view, rendering) in
  one transaction. The transaction is rolled back when the answer is not a success, so a failed
  POST leaves nothing half-written. On success the key is stored in the same transaction as the
  change it answers.
- `replay_known_key` runs after authentication, once the user is known. It answers a key seen
  before from the store, without running the view.

Two concurrent requests with the same key both miss in `replay_known_key`. The unique constraint on
(user, key) lets only one of them store its result. The other one's transaction, with everything it
created, is rolled back, and it answers with the first one's result.

Only successful JSON answers (2xx) are kept. A failed request changed nothing, so the client may
send it again, corrected, under the same key. Answers are kept for KEY_LIFETIME; after that the key
is free again, and `idempotency_keys_purge` (run by the periodic upkeep) removes them.
"""

import datetime as dt
import functools
import hashlib
import json
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from renkei.core.models import IdempotencyKey
from renkei.core.problems import STATUS_DETAILS, ProblemType, invalid_param, problem_response

HEADER = "Idempotency-Key"
# Long enough for any client's retries, short enough that the store stays small.
KEY_LIFETIME = dt.timedelta(hours=24)
# Set on answers that come from the store rather than from running the request again.
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_REUSED = "urn:renkei:problem:idempotency-key-reused"
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class RequestSignature:
    """What makes two requests the same."""

    method: str
    path: str
    digest: str

    def matches(self, stored: IdempotencyKey) -> bool:
        return (stored.method, stored.path, stored.request_digest) == (self.method, self.path, self.digest)


@dataclass(frozen=True)
class PendingKey:
    """A key seen for the first time, to be stored with the answer if the request succeeds."""

    key: str
    signature: RequestSignature


def _invalid_key_response() -> HttpResponse:
    return problem_response(
        status=422,
        detail=STATUS_DETAILS[422],
        type=ProblemType.VALIDATION,
        invalid_params=[
            invalid_param(HEADER, _("Use 1 to 255 printable ASCII characters, for example a UUID."), "header")
        ],
    )


def _key(request: HttpRequest) -> str | None:
    """The request's key; '' when the header is present but unusable."""
    if request.method != "POST" or HEADER not in request.headers:
        return None
    key = request.headers[HEADER].strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        return ""
    return key


def request_signature(request: HttpRequest) -> RequestSignature:
    """What makes two requests the same: method, path and a SHA-256 over the body (for multipart
    bodies, over the form fields and the files' names and contents)."""
    digest = hashlib.sha256()
    if request.content_type == "multipart/form-data":
        for name, values in sorted(request.POST.lists()):
            digest.update(json.dumps(["field", name, values], ensure_ascii=False).encode())
        for name, uploads in sorted(request.FILES.lists()):
            for upload in uploads:
                digest.update(
                    json.dumps(["file", name, upload.name, upload.size], ensure_ascii=False).encode()
                )
                for chunk in upload.chunks():
                    digest.update(chunk)
                upload.seek(0)
    else:
        digest.update(request.body)
    return RequestSignature(method=request.method, path=request.path[:500], digest=digest.hexdigest())


def _answer_from_store(stored: IdempotencyKey, signature: RequestSignature) -> HttpResponse:
    if not signature.matches(stored):
        return problem_response(
            status=422,
            detail=_(
                "This Idempotency-Key was already used for a different request. "
                "Use a new key for a new request."
            ),
            type=KEY_REUSED,
            invalid_params=[invalid_param(HEADER, _("Already used for another request."), "header")],
        )
    response = JsonResponse(
        stored.response_body,
        status=stored.status_code,
        safe=False,
        json_dumps_params={"ensure_ascii": False},
    )
    response[REPLAYED_HEADER] = "true"
    return response


def replay_known_key(view_func):
    """Operation decorator (runs after authentication): answer a known key from the store."""

    @functools.wraps(view_func)
    def wrapper(request: HttpRequest, *args, **kwargs):
        key = _key(request)
        if key is None:
            return view_func(request, *args, **kwargs)
        if not key:
            return _invalid_key_response()
        signature = request_signature(request)
        stored = IdempotencyKey.objects.filter(user=request.auth, key=key).first()
        if stored is not None and stored.created_at < timezone.now() - KEY_LIFETIME:
            stored.delete()  # expired: the key is free for this new request
            stored = None
        if stored is not None:
            return _answer_from_store(stored, signature)
        request.idempotency_pending = PendingKey(key=key, signature=signature)
        return view_func(request, *args, **kwargs)

    return wrapper


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").split(";")[0].strip() == "application/json"


def run_in_transaction(run):
    """View decorator: run a POST in one transaction, keep nothing unless it succeeds, and store the
    answer under its Idempotency-Key."""

    @functools.wraps(run)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if request.method != "POST":
            return run(request, *args, **kwargs)
        raced: PendingKey | None = None
        with transaction.atomic():
            response = run(request, *args, **kwargs)
            pending: PendingKey | None = getattr(request, "idempotency_pending", None)
            if not 200 <= response.status_code < 300:
                transaction.set_rollback(True)
            elif pending is not None and _is_json(response):
                try:
                    with transaction.atomic():
                        IdempotencyKey.objects.create(
                            user=request.auth,
                            key=pending.key,
                            method=pending.signature.method,
                            path=pending.signature.path,
                            request_digest=pending.signature.digest,
                            status_code=response.status_code,
                            response_body=json.loads(response.content),
                        )
                except IntegrityError:
                    # A concurrent request with the same key stored its answer first: undo ours.
                    transaction.set_rollback(True)
                    raced = pending
        if raced is not None:
            stored = IdempotencyKey.objects.get(user=request.auth, key=raced.key)
            return _answer_from_store(stored, raced.signature)
        return response

    return wrapper


def idempotency_keys_purge(*, now: dt.datetime | None = None) -> int:
    """Forget answers older than KEY_LIFETIME; returns how many."""
    cutoff = (now or timezone.now()) - KEY_LIFETIME
    deleted, _by_model = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
