"""Writing and checking the audit trail. Call `audit_write` inside the transaction of the change."""

import datetime as dt
import decimal
import hashlib
import itertools
import json
import logging
import uuid
from dataclasses import dataclass

from django.db import IntegrityError, models, transaction
from django.db.models import Max
from django.utils import timezone

from renkei.audit.models import AuditAction, AuditChainHead, AuditRecord

GENESIS_HASH = "0" * 64
# How many batches a seal after commit chains at most before leaving the rest to the next seal.
SEAL_ROUNDS = 10

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
    """Append one record in the caller's transaction; it is sealed into the chain once that commits."""
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
    _seal_after_commit()
    return record


def _seal_after_commit() -> None:
    connection = transaction.get_connection()
    if not any(callback is audit_seal for _savepoints, callback, _robust in connection.run_on_commit):
        # Robust: the change has committed whatever happens here; the next seal picks the record up.
        transaction.on_commit(audit_seal, robust=True)


def audit_seal(*, batch_size: int = 500, wait: bool = False) -> int:
    """Chain the records that are not chained yet, oldest first; returns how many were sealed.

    Runs after every audited transaction commits, holding the head's lock only for the sealing
    itself. A record whose transaction is still open is left for the seal that follows its commit.

    Without `wait`, a seal that finds the head locked by another seal leaves its records to that
    one: the holder looks for pending records again after letting go of the head, and every record
    it could have missed committed before that look. Under load one seal chains many records
    instead of every writer queueing for the head. SEAL_ROUNDS bounds how long one writer keeps
    sealing others' records; what it leaves is sealed by the next seal, the periodic upkeep or
    `audit verify`. With `wait`, the seal queues for the head and drains any backlog first.
    """
    sealed = 0
    for round_number in itertools.count(1):
        try:
            pending = _seal_batch(batch_size, wait=wait)
        except IntegrityError:
            # A place after the head is taken: the head was wound back to hide records. Sealing on
            # top of it would fail every time; `audit verify` reports the records beyond the head.
            logger.error("The audit chain's head is behind its sealed records: nothing sealed.")
            return sealed
        if pending is None:
            return sealed
        sealed += pending
        backlog = pending == batch_size
        if not backlog and not AuditRecord.objects.filter(seq__isnull=True).exists():
            return sealed
        if round_number >= SEAL_ROUNDS and not (wait and backlog):
            return sealed


def _seal_batch(batch_size: int, *, wait: bool) -> int | None:
    """Chain up to `batch_size` pending records under the head's lock; None if the head is held by
    another seal (without `wait`) or missing."""
    with transaction.atomic():
        head = AuditChainHead.objects.select_for_update(skip_locked=not wait).filter(pk=1).first()
        if head is None:
            if not wait and AuditChainHead.objects.filter(pk=1).exists():
                return None  # another seal holds the head and will pick our records up
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
    audit_seal(wait=True)
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
