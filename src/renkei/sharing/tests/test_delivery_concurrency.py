"""Notifications worked out twice at the same moment (the upkeep loop of `renkei up` beside
`renkei sharing remind`, two workers on one report) still tell each person once. Real threads on the
test database: on PostgreSQL the row locks make the runs take turns, on SQLite the write lock
taken at BEGIN IMMEDIATE does."""

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import connection
from django.utils import timezone

from renkei.core.tests.worker import run_worker_until_idle as run_worker
from renkei.directory.choices import Role
from renkei.directory.tests.factories import member
from renkei.sharing import delivery, services
from renkei.sharing.choices import NotificationKind
from renkei.sharing.tests.delivery_support import failed_tasks, mail_by_recipient
from renkei.sharing.tests.factories import advisory_for, report_for

WAIT_SECONDS = 30


def in_its_own_connection(function):
    """`function` for a worker thread, closing the thread's database connection when it is done."""

    def run(**kwargs):
        try:
            return function(**kwargs)
        finally:
            connection.close()

    return run


def test_overlapping_acknowledgement_reminder_runs_remind_each_person_once(community, inbox, monkeypatch):
    bank_b_officer = member(community.bank_b, Role.OFFICER, "bank_b_officer")
    due = timezone.now() + dt.timedelta(hours=4)
    advisory = advisory_for(
        community.nisc_coordinator,
        community.nisc,
        sectors=[community.finance],
        ack_required=True,
        ack_due=due,
    )
    run_worker()
    fanned_out = len(inbox.deliveries)

    # Both runs have found the advisory due before either reminds.
    both_listed = threading.Barrier(2)
    list_candidates = delivery._acknowledgement_reminder_candidates

    def list_then_wait_for_the_other_run(now):
        candidates = list_candidates(now)
        both_listed.wait(timeout=WAIT_SECONDS)
        return candidates

    monkeypatch.setattr(delivery, "_acknowledgement_reminder_candidates", list_then_wait_for_the_other_run)
    remind = in_its_own_connection(delivery.remind_acknowledgements)
    now = due - dt.timedelta(minutes=30)
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(remind, now=now) for _ in range(2)]
        reminded = sorted(run.result(timeout=WAIT_SECONDS) for run in runs)

    assert reminded == [0, 1]
    assert advisory.notifications.filter(kind=NotificationKind.ACKNOWLEDGEMENT_REMINDER).count() == 1
    run_worker()
    assert failed_tasks() == []
    reminders = mail_by_recipient(inbox.deliveries[fanned_out:])
    assert set(reminders) == {
        community.bank_a_admin.email,
        bank_b_officer.email,
        community.ceptoar_officer.email,
    }


def test_a_forward_notified_twice_at_once_tells_the_people_it_added_once(community, inbox, monkeypatch):
    report = report_for(community.bank_a_reporter, community.bank_a)
    run_worker()
    already = len(inbox.wait_for(3))
    services.report_forward(actor=community.nisc_coordinator, report=report, organizations=[community.bank_b])

    # The first notification holds on, inside its transaction, once it has worked out whom to tell;
    # the second must not get as far until the first has committed.
    first_holding, release_first, second_got_there = threading.Event(), threading.Event(), threading.Event()
    find_newly_forwarded = delivery._newly_forwarded_people

    def find_then_hold_the_first(report):
        people = find_newly_forwarded(report)
        if first_holding.is_set():
            second_got_there.set()
        else:
            first_holding.set()
            release_first.wait(timeout=WAIT_SECONDS)
        return people

    monkeypatch.setattr(delivery, "_newly_forwarded_people", find_then_hold_the_first)
    notify = in_its_own_connection(delivery.notify_report)
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(notify, report_id=str(report.pk), event="forwarded")
        assert first_holding.wait(timeout=WAIT_SECONDS)
        second = pool.submit(notify, report_id=str(report.pk), event="forwarded")
        try:
            assert not second_got_there.wait(timeout=1), "the second notification waits for the first"
        finally:
            release_first.set()
        queued = sorted(run.result(timeout=WAIT_SECONDS) for run in (first, second))

    assert queued == [0, 1]
    run_worker()  # also the notification the forward queued itself, which finds nobody new
    assert failed_tasks() == []
    assert set(mail_by_recipient(inbox.deliveries[already:])) == {community.bank_b_reporter.email}
