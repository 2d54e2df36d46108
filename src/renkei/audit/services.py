"""Writing and checking the audit trail. Call `audit_write` inside the transaction of the change."""

import datetime as dt
import decimal
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass

from django.db import IntegrityError, models, transaction
from django.db.models import Max
from django.utils import timezone

from renkei.audit.models import AuditAction, AuditChainHead, AuditRecord
from renkei.core.periodic import Periodic

GENESIS_HASH = "0" * 64
# How long an appended record waits at most, while a worker runs, before it is sealed into the chain.
SEAL_INTERVAL_SECONDS = 1.0

logger = logging.getLogger(__name__)


def snapshot(
    instance: models.Model, *, exclude: tuple[str, ...] = ("password",), just_created: bool = False
) -> dict:
    """A JSON-safe picture of a model instance's concrete fields and many-to-many ids.

    `just_created`: the instance was inserted in this transaction and nothing was added to its
    many-to-many fields yet, so they are empty without asking the database.
    """
    data: dict = {}
    for field in instance._meta.concrete_fields:
        if field.name in exclude:
            continue
        data[field.attname] = _json_value(field.value_from_object(instance))
    if instance.pk is not None:
        for field in instance._meta.many_to_many:
            ids = [] if just_created else getattr(instance, field.name).values_list("pk", flat=True)
            data[field.name] = sorted(_json_value(pk) for pk in ids)
    return data


def _json_value(value):
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, dt.datetime):
        return (
            value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            if timezone.is_aware(value)
            else value.isoformat()
        )
    if isinstance(value, (dt.date, dt.time, decimal.Decimal, uuid.UUID, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return str(value)


def _record_hash(
    *,
    prev_hash: str,
    at: dt.datetime,
    actor_id,
    actor_label: str,
    action: str,
    object_type: str,
    object_id: str,
    object_repr: str,
    before,
    after,
) -> str:
    payload = json.dumps(
        {
            "prev": prev_hash,
            "at": _json_value(at),
            "actor_id": actor_id,
            "actor": actor_label,
            "action": action,
            "type": object_type,
            "id": object_id,
            "repr": object_repr,
            "before": before,
            "after": after,
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _hash_of(record: AuditRecord) -> str:
    return _record_hash(
        prev_hash=record.prev_hash,
        at=record.at,
        actor_id=record.actor_id,
        actor_label=record.actor_label,
        action=record.action,
        object_type=record.object_type,
        object_id=record.object_id,
        object_repr=record.object_repr,
        before=record.before,
        after=record.after,
    )


def audit_write(
    *,
    actor,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    before: dict | None = None,
    after: dict | None = None,
) -> AuditRecord:
    """Append one record in the caller's transaction; the sealer chains it once that has committed."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)[:200]
    actor = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    record = AuditRecord.objects.create(
        at=timezone.now(),
        actor=actor,
        actor_label=actor.get_username() if actor else "",
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        object_repr=object_repr[:200],
        before=_json_value(before) if before is not None else None,
        after=_json_value(after) if after is not None else None,
    )
    return record


def audit_seal(*, batch_size: int = 500) -> int:
    """Chain the committed records that are not chained yet, oldest first; returns how many were sealed.

    Requests only append: every task worker runs `audit_sealer`, which calls this every second, so
    no write queues for the chain's head. `audit verify` calls it before walking the chain. A record
    whose transaction is still open is left for the next seal; two seals at once queue for the
    head's lock, and the later one finds less, or nothing, left to do.
    """
    sealed = 0
    while AuditRecord.objects.filter(seq__isnull=True).exists():
        try:
            chained = _seal_batch(batch_size)
        except IntegrityError:
            # A place after the head is taken: the head was wound back to hide records. Sealing on
            # top of it would fail every time; `audit verify` reports the records beyond the head.
            logger.error("The audit chain's head is behind its sealed records: nothing sealed.")
            return sealed
        if chained is None:
            return sealed
        sealed += chained
        if chained < batch_size:
            return sealed
    return sealed


def _seal_batch(batch_size: int) -> int | None:
    """Chain up to `batch_size` pending records under the head's lock; None if the head is missing."""
    with transaction.atomic():
        head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
        if head is None:
            if AuditRecord.objects.filter(seq__isnull=False).exists():
                logger.error("The audit chain's head is missing: nothing sealed.")
                return None
            head = AuditChainHead.objects.create(pk=1, last_hash=GENESIS_HASH, length=0)
        pending = list(AuditRecord.objects.filter(seq__isnull=True).order_by("id")[:batch_size])
        prev_hash, length = head.last_hash, head.length
        for record in pending:
            length += 1
            record.seq, record.prev_hash = length, prev_hash
            record.hash = prev_hash = _hash_of(record)
        if pending:
            AuditRecord.objects.chain_unsealed(pending)
            AuditChainHead.objects.filter(pk=head.pk).update(last_hash=prev_hash, length=length)
    return len(pending)


def audit_sealer(*, interval: float = SEAL_INTERVAL_SECONDS) -> Periodic:
    """The loop that seals what requests appended, run beside every task worker (`renkei worker`,
    `renkei up`); it seals once more when stopped."""
    return Periodic(audit_seal, interval=interval, name="renkei-audit-sealer", run_on_stop=True)


def audit_read(*, actor, obj: models.Model) -> AuditRecord:
    """Record that `actor` read restricted material."""
    return audit_write(actor=actor, action=AuditAction.READ, obj=obj)


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    checked: int
    broken_record_id: int | None = None
    reason: str = ""


def audit_verify(*, batch_size: int = 2000) -> ChainCheck:
    """Seal what has committed, then walk the chain up to its head; report the first record whose
    place, link or content does not match.

    The head is read first, so records sealed while the walk runs are left for the next check
    instead of looking like a mismatch; a chain shorter than its head has lost records, and a sealed
    record beyond the head was cut off the chain's end.
    """
    audit_seal()
    head = AuditChainHead.objects.filter(pk=1).first()
    length = head.length if head is not None else 0
    prev_hash = GENESIS_HASH
    checked = 0
    while checked < length:
        batch = list(
            AuditRecord.objects.filter(seq__gt=checked).order_by("seq")[: min(batch_size, length - checked)]
        )
        if not batch:
            break
        for record in batch:
            # The hashes do not cover `seq`: a gap in the places is a record moved out of the chain.
            if record.seq != checked + 1 or record.prev_hash != prev_hash:
                return ChainCheck(False, checked, record.pk, "link")
            if _hash_of(record) != record.hash:
                return ChainCheck(False, checked, record.pk, "content")
            prev_hash = record.hash
            checked += 1
    if checked < length or (head is not None and head.last_hash != prev_hash):
        return ChainCheck(False, checked, None, "truncated")
    if head is None and AuditRecord.objects.filter(seq__isnull=False).exists():
        return ChainCheck(False, 0, AuditRecord.objects.order_by("seq").first().pk, "link")
    # Sealing raises the head in the same transaction as it seals, so the highest place read first
    # can only be beyond the head read after it if the head was wound back over sealed records.
    highest = AuditRecord.objects.aggregate(highest=Max("seq"))["highest"] or 0
    head_after = AuditChainHead.objects.filter(pk=1).values_list("length", flat=True).first() or 0
    if highest > head_after:
        beyond = AuditRecord.objects.filter(seq__gt=head_after).order_by("seq").first()
        return ChainCheck(False, checked, beyond.pk, "beyond_head")
    return ChainCheck(True, checked)
