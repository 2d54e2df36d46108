"""The database under the embedded run's load: request threads and the task worker at once.

On SQLite this proves WAL, the busy timeout and IMMEDIATE transactions (settings.SQLITE_OPTIONS)
keep every writer waiting its turn instead of failing with "database is locked"; on PostgreSQL the
same workload proves that records sealed after each commit, under the head row's lock, all join the
chain. Either way the hash chain must come out whole.
"""

import threading
import time

from django.core import mail
from django.db import close_old_connections, connection, transaction
from django_tasks_db.models import DBTaskResult

from renkei.audit.models import AuditAction, AuditRecord
from renkei.audit.services import audit_sealer, audit_verify, audit_write
from renkei.core.management.commands.up import InProcessWorker
from renkei.directory.choices import OrganizationType, Role
from renkei.directory.models import Organization, User
from renkei.directory.services import organization_create, user_create
from renkei.directory.tests.factories import OrganizationFactory, SectorFactory, member

THREADS = 8
ROUNDS = 15  # each round: one organization, one user (and its welcome e-mail), one audited read


def request_thread(number: int, *, actor, home, sector, start: threading.Barrier, errors: list) -> None:
    """What a busy web worker thread does: reads, service writes, and read-then-write transactions."""
    try:
        start.wait()
        for round_ in range(ROUNDS):
            # Reads outside any transaction, as a page does before it changes anything.
            assert Organization.objects.restrict(actor).filter(pk=home.pk).exists()
            operators = Organization.objects.filter(type=OrganizationType.OPERATOR)
            list(operators.values_list("name_ja", flat=True))

            organization_create(
                actor=actor,
                name_ja=f"並行試験{number}-{round_}株式会社",
                name_en=f"Concurrency {number}-{round_} Ltd.",
                org_type=OrganizationType.OPERATOR,
                sectors=[sector],
                size="sme",
            )
            user_create(
                actor=actor,
                username=f"load-{number}-{round_}",
                organization=home,
                role=Role.REPORTER,
                email=f"load-{number}-{round_}@operator.example.jp",
            )
            # Read, then write in the same transaction: the pattern that fails on a default SQLite.
            with transaction.atomic():
                seen = AuditRecord.objects.filter(object_id=str(home.pk)).count()
                audit_write(actor=actor, action=AuditAction.READ, obj=home, after={"seen": seen})
    except Exception as error:
        errors.append(f"thread {number}: {type(error).__name__}: {error}")
    finally:
        connection.close()


def wait_until_queue_is_empty(timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while DBTaskResult.objects.filter(status__in=["READY", "RUNNING"]).exists():
        assert time.monotonic() < deadline, "the worker did not finish the queued tasks"
        time.sleep(0.1)
        close_old_connections()


def test_concurrent_writers_and_the_task_worker_never_see_a_locked_database(transactional_db):
    sector = SectorFactory(code="loadtest")
    home = OrganizationFactory(name_ja="負荷試験本社", name_en="Load Test HQ", sectors=[sector])
    actor = member(home, Role.ORG_ADMIN, "load-admin")
    records_before = AuditRecord.objects.count()
    organizations_before = Organization.objects.count()

    worker = InProcessWorker(interval=0.05)
    worker.start()
    sealer = audit_sealer(interval=0.05)  # as `renkei up` runs it: one more writer to contend with
    sealer.start()
    start = threading.Barrier(THREADS)
    errors: list[str] = []
    threads = [
        threading.Thread(
            target=request_thread,
            args=(number,),
            kwargs={"actor": actor, "home": home, "sector": sector, "start": start, "errors": errors},
        )
        for number in range(THREADS)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert not any(thread.is_alive() for thread in threads), "a request thread hung"
        wait_until_queue_is_empty()
    finally:
        worker.stop()
        sealer.stop()

    assert errors == []
    writes = THREADS * ROUNDS
    assert Organization.objects.count() == organizations_before + writes
    members = User.objects.filter(username__startswith="load-", memberships__organization=home)
    assert members.count() == writes + 1  # and the admin who made them
    assert AuditRecord.objects.count() == records_before + 3 * writes

    tasks = DBTaskResult.objects.filter(task_path="renkei.directory.tasks.send_welcome_email")
    assert tasks.count() == writes
    assert set(tasks.values_list("status", flat=True)) == {"SUCCESSFUL"}
    assert len(mail.outbox) == writes
    assert len({message.to[0] for message in mail.outbox}) == writes

    assert not AuditRecord.objects.filter(seq__isnull=True).exists(), "the sealer chained every record"
    check = audit_verify()
    assert check.ok, check
    assert check.checked == AuditRecord.objects.count()
