"""The audit trail: every write recorded in its own transaction, append-only, hash-chained, verifiable."""

import io
import json
import threading
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone, translation

from renkei.audit.models import AppendOnlyError, AuditChainHead, AuditRecord
from renkei.audit.services import (
    GENESIS_HASH,
    ChainCheck,
    _hash_of,
    audit_seal,
    audit_sealer,
    audit_verify,
    audit_write,
)
from renkei.cli import main as renkei_main
from renkei.core.services import token_create, token_revoke
from renkei.directory.models import Membership, Organization
from renkei.directory.services import (
    ContactInput,
    OrganizationImportRow,
    contact_routes_replace,
    membership_add,
    membership_remove,
    organization_create,
    organization_remove,
    organization_update,
    organizations_import,
    reference_data_load,
    two_factor_device_add,
    user_create,
    user_remove,
)

ROUTES = [ContactInput("email", "soc@example.jp"), ContactInput("phone", "03-0000-0000")]


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def verify(*args) -> str:
    stdout = io.StringIO()
    call_command("audit", "verify", *args, stdout=stdout)
    return stdout.getvalue()


def records_after(pk: int):
    return list(AuditRecord.objects.filter(pk__gt=pk).order_by("pk"))


def records_before(pk: int) -> int:
    return AuditRecord.objects.filter(pk__lt=pk).order_by("-pk").values_list("pk", flat=True)[0]


# Each service write, and the (action, object type) of the record it must leave.
SERVICE_WRITES = {
    "organization_create": (
        lambda c: organization_create(
            actor=c.nisc_coordinator, name_ja="新組織", org_type="vendor", contacts=ROUTES
        ),
        "create",
        "directory.organization",
    ),
    "organization_update": (
        lambda c: organization_update(
            actor=c.nisc_coordinator, organization=c.bank_a, name_en="Sakura Bank Ltd."
        ),
        "update",
        "directory.organization",
    ),
    "organization_remove": (
        lambda c: organization_remove(actor=None, organization=c.bank_b),
        "update",
        "directory.organization",
    ),
    "contact_routes_replace": (
        lambda c: contact_routes_replace(actor=c.bank_a_admin, organization=c.bank_a, contacts=ROUTES),
        "update",
        "directory.organization",
    ),
    "organizations_import": (
        lambda c: organizations_import(
            actor=None,
            rows=[OrganizationImportRow(row=2, name_ja="輸入組織", type="operator", sectors="gas")],
        ),
        "create",
        "directory.organization",
    ),
    "user_create": (
        lambda c: user_create(
            actor=c.bank_a_admin, username="newbie", organization=c.bank_a, role="reporter"
        ),
        "create",
        "directory.user",
    ),
    "user_remove": (lambda c: user_remove(actor=None, user=c.hospital_reporter), "delete", "directory.user"),
    "membership_add": (
        lambda c: membership_add(actor=None, user=c.bank_a_reporter, organization=c.bank_a, role="analyst"),
        "create",
        "directory.membership",
    ),
    "membership_remove": (
        lambda c: membership_remove(actor=None, membership=c.bank_b_reporter.memberships.get()),
        "delete",
        "directory.membership",
    ),
    "two_factor_device_add": (
        lambda c: two_factor_device_add(
            actor=None, user=c.fsa_coordinator, key="3132333435363738393031323334353637383930", name="demo"
        ),
        "create",
        "otp_totp.totpdevice",
    ),
    "token_create": (
        lambda c: token_create(actor=c.bank_a_reporter, user=c.bank_a_reporter),
        "token_create",
        "core.apitoken",
    ),
    "token_revoke": (
        lambda c: token_revoke(actor=None, token=token_create(actor=None, user=c.bank_a_reporter)[0]),
        "token_revoke",
        "core.apitoken",
    ),
}


@pytest.mark.parametrize("name", SERVICE_WRITES)
def test_every_service_write_leaves_an_audit_record(community, name):
    write, action, object_type = SERVICE_WRITES[name]
    last = AuditRecord.objects.order_by("pk").last().pk
    write(community)
    new = records_after(last)
    assert new, f"{name} wrote no audit record"
    assert (new[-1].action, new[-1].object_type) == (action, object_type)
    assert audit_verify().ok


def test_reference_data_load_is_audited(db):
    reference_data_load()
    types = set(AuditRecord.objects.values_list("object_type", flat=True))
    assert types == {"directory.organization", "directory.sector"}
    assert AuditRecord.objects.count() == Organization.objects.count() + 15


def test_a_failing_service_leaves_no_audit_record(community, monkeypatch):
    """membership_remove writes its record before deleting: the failed delete must take it back."""
    membership = community.bank_b_reporter.memberships.get()
    audit_seal()
    head_before = AuditChainHead.objects.get()
    count_before = AuditRecord.objects.count()

    def refuse(self, *args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Membership, "delete", refuse)
    with pytest.raises(RuntimeError):
        membership_remove(actor=None, membership=membership)
    monkeypatch.undo()

    assert AuditRecord.objects.count() == count_before
    assert Membership.objects.filter(pk=membership.pk).exists()
    head_after = AuditChainHead.objects.get()
    assert (head_after.last_hash, head_after.length) == (head_before.last_hash, head_before.length)
    membership_remove(actor=None, membership=membership)
    assert audit_verify().ok


def test_the_record_shares_the_callers_transaction(community):
    count_before = AuditRecord.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        organization_create(actor=None, name_ja="幻の組織", org_type="vendor", contacts=ROUTES)
        raise RuntimeError("the caller fails after the service succeeded")
    assert not Organization.objects.filter(name_ja="幻の組織").exists()
    assert AuditRecord.objects.count() == count_before
    assert audit_verify().ok


def test_records_name_the_actor_and_keep_before_and_after(community):
    organization_update(actor=community.bank_a_admin, organization=community.bank_a, size="sme")
    audit_seal()
    record = AuditRecord.objects.order_by("pk").last()
    assert record.actor == community.bank_a_admin
    assert record.actor_label == "bank_a_admin"
    assert (record.before["size"], record.after["size"]) == ("large", "sme")
    assert record.prev_hash == AuditRecord.objects.get(pk=records_before(record.pk)).hash


# --- renkei audit verify -------------------------------------------------------------------------


def test_verify_ok(community):
    total = AuditRecord.objects.count()
    assert f"OK: the audit trail is intact ({total} records)" in verify()
    assert json.loads(verify("--json")) == {
        "ok": True,
        "checked": total,
        "broken_record_id": None,
        "reason": None,
    }


def test_verify_on_an_empty_trail(db):
    assert json.loads(verify("--json"))["checked"] == 0


SEAL_GUARD = "audit_sealed_record_unchanged"


@pytest.fixture
def seal_guard_dropped(db):
    """Without the trigger that refuses changes to sealed records, as the database's owner could
    drop it; the test's rollback brings it back."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"DROP TRIGGER {SEAL_GUARD} ON audit_auditrecord")
        else:
            cursor.execute(f"DROP TRIGGER {SEAL_GUARD}")


def _tampered_record(community) -> AuditRecord:
    """A record well inside the chain; sealed first, as every committed record soon is."""
    audit_seal()
    return AuditRecord.objects.filter(object_type="directory.organization").order_by("pk")[3]


def test_an_edited_row_is_detected(community, seal_guard_dropped):
    target = _tampered_record(community)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditrecord SET object_repr = %s WHERE id = %s", ["forged", target.pk])
    with pytest.raises(CommandError) as excinfo:
        verify()
    assert excinfo.value.returncode == 1
    assert f"broken at record #{target.pk}" in str(excinfo.value)
    assert "content does not match its hash" in str(excinfo.value)


def test_an_edited_row_is_detected_in_json(community, seal_guard_dropped):
    target = _tampered_record(community)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditrecord SET actor_label = %s WHERE id = %s", ["someone else", target.pk]
        )
    stdout = io.StringIO()
    with pytest.raises(CommandError):
        call_command("audit", "verify", "--json", stdout=stdout)
    document = json.loads(stdout.getvalue())
    assert document == {
        "ok": False,
        "checked": AuditRecord.objects.filter(pk__lt=target.pk).count(),
        "broken_record_id": target.pk,
        "reason": "content",
    }


def test_a_rehashed_row_breaks_the_link_to_the_next(community, seal_guard_dropped):
    """Someone who edits a row and recomputes its hash still breaks the next record's link."""
    target = _tampered_record(community)
    next_record = AuditRecord.objects.filter(pk__gt=target.pk).order_by("pk").first()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditrecord SET hash = %s WHERE id = %s", ["f" * 64, target.pk])
    check = audit_verify()
    assert (check.ok, check.broken_record_id) == (False, target.pk)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditrecord WHERE id = %s", [target.pk])
    check = audit_verify()
    assert (check.ok, check.broken_record_id, check.reason) == (False, next_record.pk, "link")


def test_deleting_the_last_record_is_detected(community):
    audit_seal()
    last = AuditRecord.objects.order_by("pk").last()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditrecord WHERE id = %s", [last.pk])
    with pytest.raises(CommandError) as excinfo:
        verify()
    assert excinfo.value.returncode == 1
    assert "missing from the end of the chain" in str(excinfo.value)


def test_the_console_command_exits_with_status_one_on_a_broken_chain(community, capsys, seal_guard_dropped):
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditrecord SET object_id = %s WHERE id = %s",
            ["999", _tampered_record(community).pk],
        )
    with pytest.raises(SystemExit) as excinfo:
        renkei_main(["renkei", "audit", "verify"])
    assert excinfo.value.code == 1
    assert "broken at record" in capsys.readouterr().err


def _hide_beyond_the_head(target: AuditRecord, *, renumber: bool) -> None:
    """Hide `target` the way the application's column grant would allow without the seal guard: move
    it past the head, re-chain the records after it (closing the gap in their places if `renumber`)
    and wind the head back by one."""
    head = AuditChainHead.objects.get()
    later = list(AuditRecord.objects.filter(seq__gt=target.seq).order_by("seq"))
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditrecord SET seq = %s WHERE id = %s", [head.length + 1, target.pk])
        prev_hash = target.prev_hash
        for record in later:
            if renumber:
                record.seq -= 1
            record.prev_hash = prev_hash
            record.hash = prev_hash = _hash_of(record)
            cursor.execute(
                "UPDATE audit_auditrecord SET seq = %s, prev_hash = %s, hash = %s WHERE id = %s",
                [record.seq, record.prev_hash, record.hash, record.pk],
            )
        cursor.execute(
            "UPDATE audit_auditchainhead SET length = %s, last_hash = %s", [head.length - 1, prev_hash]
        )


def test_a_record_moved_beyond_the_head_is_detected(community, seal_guard_dropped):
    """Every link and hash of the re-chained, renumbered chain checks out; the record left sealed
    beyond the head gives it away."""
    target = _tampered_record(community)
    length = AuditChainHead.objects.get().length
    _hide_beyond_the_head(target, renumber=True)
    assert audit_verify() == ChainCheck(False, length - 1, target.pk, "beyond_head")
    with pytest.raises(CommandError, match=f"#{target.pk}: it is sealed beyond the chain's head"):
        verify()


def test_a_gap_in_the_places_is_detected(community, seal_guard_dropped):
    """The same without renumbering: the links check out, the missing place does not."""
    target = _tampered_record(community)
    next_record = AuditRecord.objects.filter(seq=target.seq + 1).get()
    _hide_beyond_the_head(target, renumber=False)
    assert audit_verify() == ChainCheck(False, target.seq - 1, next_record.pk, "link")


# --- append-only ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditrecord SET seq = seq + 1000 WHERE id = %s",
        "UPDATE audit_auditrecord SET seq = NULL WHERE id = %s",
        "UPDATE audit_auditrecord SET prev_hash = hash WHERE id = %s",
        "UPDATE audit_auditrecord SET hash = NULL WHERE id = %s",
        "UPDATE audit_auditrecord SET object_repr = 'forged' WHERE id = %s",
        "UPDATE audit_auditrecord SET actor_id = NULL WHERE id = %s",
    ],
)
def test_the_database_refuses_any_update_of_a_sealed_record(community, statement):
    audit_seal()
    record = AuditRecord.objects.order_by("seq").last()
    with pytest.raises(IntegrityError, match="sealed"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, [record.pk])
    fields = ("seq", "prev_hash", "hash", "object_repr", "actor_id")
    assert AuditRecord.objects.values_list(*fields).get(pk=record.pk) == tuple(
        getattr(record, field) for field in fields
    )
    assert audit_verify().ok


def test_records_cannot_be_changed_or_removed_through_the_orm(community):
    record = AuditRecord.objects.order_by("pk").first()
    record.object_repr = "changed"
    with pytest.raises(AppendOnlyError):
        record.save()
    with pytest.raises(AppendOnlyError):
        record.delete()
    with pytest.raises(AppendOnlyError):
        AuditRecord.objects.filter(pk=record.pk).update(object_repr="changed")
    with pytest.raises(AppendOnlyError):
        AuditRecord.objects.filter(pk=record.pk).delete()
    with pytest.raises(AppendOnlyError):
        AuditRecord.objects.all().delete()
    assert AuditRecord.objects.get(pk=record.pk).object_repr != "changed"
    assert audit_verify().ok


def test_a_record_is_written_unsealed_and_sealed_onto_the_head(community):
    audit_seal()
    head = AuditChainHead.objects.get()
    record = audit_write(actor=community.bank_a_reporter, action="read", obj=community.bank_b)
    record.refresh_from_db()
    assert (record.seq, record.prev_hash, record.hash) == (None, "", None)

    assert audit_seal() == 1
    record.refresh_from_db()
    assert (record.seq, record.prev_hash) == (head.length + 1, head.last_hash)
    head.refresh_from_db()
    assert (head.last_hash, head.length) == (record.hash, AuditRecord.objects.count())
    assert audit_seal() == 0


def test_a_sealed_record_is_never_resealed(community):
    audit_seal()
    record = AuditRecord.objects.order_by("pk").last()
    forged = AuditRecord(pk=record.pk, seq=10**9, prev_hash=GENESIS_HASH, hash="f" * 64)
    AuditRecord.objects.chain_unsealed([forged])
    record_after = AuditRecord.objects.get(pk=record.pk)
    assert (record_after.seq, record_after.hash) == (record.seq, record.hash)


def wait_until(condition, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_the_sealer_chains_committed_records_in_the_background(transactional_db):
    with transaction.atomic():
        first = audit_write(actor=None, action="create", object_type="test.thing", object_id="1")
        second = audit_write(actor=None, action="update", object_type="test.thing", object_id="1")
    assert AuditRecord.objects.filter(seq__isnull=True).count() == 2, "a write never waits for the head"

    sealer = audit_sealer(interval=0.05)
    sealer.start()
    try:
        assert wait_until(lambda: not AuditRecord.objects.filter(seq__isnull=True).exists())
    finally:
        sealer.stop()
    assert not sealer.thread.is_alive()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.seq, second.seq, second.prev_hash) == (1, 2, first.hash)
    assert audit_verify() == ChainCheck(True, 2)


def test_the_sealer_seals_once_more_when_stopped(transactional_db):
    sealer = audit_sealer(interval=3600)
    sealer.start()
    record = audit_write(actor=None, action="create", object_type="test.thing")
    sealer.stop()
    record.refresh_from_db()
    assert record.seq == 1


def test_the_worker_command_runs_the_sealer(transactional_db):
    record = audit_write(actor=None, action="create", object_type="test.thing")
    call_command("worker", "--batch", "--no-startup-delay", verbosity=0)
    record.refresh_from_db()
    assert record.seq == 1


def test_a_record_whose_transaction_is_open_joins_the_chain_at_the_next_seal(transactional_db):
    """Ids are handed out at insert, places in the chain at the first seal after commit. On
    PostgreSQL a quick transaction's record (higher id) can so come before a slow one's (lower
    id); SQLite lets one writer at a time, so there nothing else commits meanwhile."""
    written, release = threading.Event(), threading.Event()
    records: dict[str, AuditRecord] = {}

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                records["slow"] = audit_write(actor=None, action="create", object_type="test.slow")
                written.set()
                release.wait(10)
        finally:
            connection.close()

    slow = threading.Thread(target=slow_writer)
    slow.start()
    try:
        assert written.wait(10)
        if connection.vendor == "postgresql":
            records["quick"] = audit_write(actor=None, action="create", object_type="test.quick")
            assert audit_seal() == 1
            assert AuditRecord.objects.get(pk=records["quick"].pk).seq == 1
        else:
            assert audit_seal() == 0
    finally:
        release.set()
        slow.join(10)

    assert audit_seal() == 1
    places = dict(AuditRecord.objects.values_list("object_type", "seq"))
    assert places["test.slow"] == len(records)
    assert audit_verify() == ChainCheck(True, len(records))


def test_seals_at_once_chain_every_record_exactly_once(transactional_db):
    AuditRecord.objects.bulk_create(
        AuditRecord(at=timezone.now(), action="create", object_type="test.bulk", object_id=str(n))
        for n in range(1200)
    )
    sealed: list[int] = []
    start = threading.Barrier(4)

    def seal() -> None:
        try:
            start.wait(10)
            sealed.append(audit_seal(batch_size=100))
        finally:
            connection.close()

    sealers = [threading.Thread(target=seal) for _ in range(4)]
    for sealer in sealers:
        sealer.start()
    for sealer in sealers:
        sealer.join(30)
    assert sum(sealed) == 1200 and len(sealed) == 4
    assert audit_verify() == ChainCheck(True, 1200)


def test_a_missing_head_is_reported_not_rebuilt(community):
    audit_seal()
    first = AuditRecord.objects.order_by("seq").first()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditchainhead")
    check = audit_verify()
    assert (check.ok, check.broken_record_id, check.reason) == (False, first.pk, "link")
    assert not AuditChainHead.objects.exists()


def test_a_head_wound_back_stops_sealing_and_verify_reports_it(community, caplog):
    """Winding the head back needs no change to any sealed record; writes after it must neither
    fail nor seal over the records it hides, and verify names the first of them."""
    audit_seal()
    last = AuditRecord.objects.order_by("seq").last()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditchainhead SET length = length - 1, last_hash = %s", [last.prev_hash]
        )
    written = audit_write(actor=community.bank_a_reporter, action="read", obj=community.bank_b)
    assert audit_seal() == 0
    assert "head is behind its sealed records" in caplog.text
    assert AuditRecord.objects.get(pk=written.pk).seq is None
    check = audit_verify()
    assert (check.ok, check.broken_record_id, check.reason) == (False, last.pk, "beyond_head")
