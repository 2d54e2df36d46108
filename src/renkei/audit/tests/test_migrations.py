"""The audit app's data migrations, run on rows built with the historical models."""

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from renkei.audit.models import AuditRecord
from renkei.audit.services import GENESIS_HASH, ChainCheck, _hash_of, audit_verify
from renkei.audit.tests.migration_support import back_to_the_latest_migrations_afterwards, migrate_to

BEFORE_SEALING = ("audit", "0002_login_failures_left_to_axes")
SEALING = ("audit", "0003_records_sealed_after_commit")


@pytest.mark.django_db(transaction=True)
def test_the_chain_written_before_sealing_is_numbered_in_id_order():
    """Records used to be chained at write time, in id order; inserted here out of that order, so the
    numbering cannot follow insertion by accident."""
    with back_to_the_latest_migrations_afterwards():
        old = migrate_to(BEFORE_SEALING)
        OldRecord = old.get_model("audit", "AuditRecord")
        start = timezone.now() - dt.timedelta(days=1)
        chain = [
            OldRecord(id=pk, at=start + dt.timedelta(minutes=pk), action="update", object_id=str(pk))
            for pk in (10, 20, 30)
        ]
        prev_hash = GENESIS_HASH
        for record in chain:
            record.prev_hash = prev_hash
            record.hash = prev_hash = _hash_of(record)
        for record in (chain[2], chain[0], chain[1]):
            record.save()
        old.get_model("audit", "AuditChainHead").objects.create(pk=1, last_hash=prev_hash, length=3)

        migrate_to(SEALING)

    assert list(AuditRecord.objects.order_by("seq").values_list("id", "seq")) == [(10, 1), (20, 2), (30, 3)]
    assert audit_verify() == ChainCheck(True, 3)


@pytest.mark.django_db(transaction=True)
def test_sealed_records_still_refuse_updates_once_the_index_migration_is_undone():
    """Undoing 0005 rebuilds the table on SQLite, which drops its triggers; the guard must come back.
    (Applying it is covered by test_audit.py, which runs on the latest migrations.)"""
    with back_to_the_latest_migrations_afterwards():
        old = migrate_to(("audit", "0004_sealed_records_refuse_updates"))
        sealed = old.get_model("audit", "AuditRecord").objects.create(
            at=timezone.now(),
            action="update",
            object_type="test.thing",
            seq=1,
            prev_hash=GENESIS_HASH,
            hash="f" * 64,
        )
        with (
            pytest.raises(IntegrityError, match="sealed"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute("UPDATE audit_auditrecord SET object_repr = 'forged' WHERE id = %s", [sealed.pk])
