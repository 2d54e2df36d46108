"""Reporting deadlines from the shipped profiles (NISC, NIS2, CIRCIA), computed in Python and in the
database alike, and the reminders e-mailed to reporters."""

import datetime as dt
import io
import json
import socket

import pytest
from django.core.mail.backends.smtp import EmailBackend
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from renkei.sharing import delivery, services
from renkei.sharing.choices import NotificationKind, ReportStatus, VersionStage
from renkei.sharing.deadlines import overdue_reports, reports_with_pending_stages, stage_deadlines
from renkei.sharing.delivery import periodic_upkeep, remind_deadlines
from renkei.sharing.models import DeadlineProfile, NotificationLog, Report
from renkei.sharing.tests.factories import report_for, report_input

HOUR = dt.timedelta(hours=1)


def detected(hours_ago: float) -> dict:
    at = timezone.now() - hours_ago * HOUR
    return {"detected_at": at, "occurred_at": at - HOUR}


def add_version(report: Report, stage: str, **overrides):
    data = report_input(
        report.organization,
        detected_at=report.detected_at,
        occurred_at=report.occurred_at,
        tlp=report.tlp,
        **overrides,
    )
    return services.report_update(author=report.reporter, report=report, data=data, stage=stage)


def by_code(report: Report, now) -> dict:
    return {deadline.stage.code: deadline for deadline in stage_deadlines(report, now=now)}


def test_nisc_stages_count_from_detection_and_from_the_previous_stage(community):
    report = report_for(community.bank_a_reporter, community.bank_a, **detected(10))
    initial_version = report.versions.get()
    assert report.deadline_profile.code == "nisc"

    now = timezone.now()
    stages = by_code(report, now)
    assert list(stages) == ["initial", "update", "final"]
    assert stages["initial"].due_at == report.detected_at + 24 * HOUR
    assert stages["initial"].fulfilled_by == initial_version
    assert not stages["initial"].late
    assert stages["update"].starts_at == initial_version.created_at, "counted from the initial report"
    assert stages["update"].due_at == initial_version.created_at + 72 * HOUR
    assert stages["update"].fulfilled_by is None
    assert stages["final"].due_at == report.detected_at + 720 * HOUR
    assert not any(d.overdue for d in stages.values())

    later = by_code(report, now + 80 * HOUR)
    assert later["update"].overdue
    assert not later["final"].overdue
    assert list(overdue_reports(Report.objects.all(), now=now)) == []
    assert list(overdue_reports(Report.objects.all(), now=now + 80 * HOUR)) == [report]


def test_a_late_initial_report_meets_its_stage_late(community):
    report = report_for(community.bank_a_reporter, community.bank_a, **detected(30))
    initial = by_code(report, timezone.now())["initial"]
    assert initial.late
    assert not initial.overdue


def test_a_final_report_also_meets_a_pending_update(community):
    report = report_for(community.bank_a_reporter, community.bank_a, **detected(2))
    final = add_version(report, VersionStage.FINAL)
    stages = by_code(report, timezone.now() + 1000 * HOUR)
    assert stages["update"].fulfilled_by == final
    assert stages["final"].fulfilled_by == final
    assert not any(d.overdue for d in stages.values())
    assert list(overdue_reports(Report.objects.all(), now=timezone.now() + 1000 * HOUR)) == []


def test_nis2_deadlines_all_count_from_detection(community):
    nis2 = DeadlineProfile.objects.get(code="nis2")
    report = report_for(community.bank_a_reporter, community.bank_a, deadline_profile=nis2, **detected(1))
    stages = by_code(report, timezone.now())
    assert [stages[c].due_at - report.detected_at for c in ("early_warning", "notification", "final")] == [
        24 * HOUR,
        72 * HOUR,
        720 * HOUR,
    ]
    add_version(report, VersionStage.UPDATE)
    assert by_code(report, timezone.now() + 100 * HOUR)["notification"].fulfilled_by is not None
    assert list(overdue_reports(Report.objects.all(), now=timezone.now() + 100 * HOUR)) == []


def test_circia_ransom_stage_applies_only_when_a_ransom_was_paid(community):
    circia = DeadlineProfile.objects.get(code="circia")
    paid = report_for(
        community.bank_a_reporter, community.bank_a, deadline_profile=circia, ransom_paid=True, **detected(1)
    )
    unpaid = report_for(community.bank_a_reporter, community.bank_a, deadline_profile=circia, **detected(1))
    assert list(by_code(unpaid, timezone.now())) == ["covered_incident"]
    assert list(by_code(paid, timezone.now())) == ["covered_incident", "ransom_payment"]

    day_later = timezone.now() + 25 * HOUR
    assert by_code(paid, day_later)["ransom_payment"].overdue
    assert list(overdue_reports(Report.objects.all(), now=day_later)) == [paid]


def test_closed_reports_are_never_overdue(community):
    report = report_for(community.bank_a_reporter, community.bank_a, **detected(2))
    add_version(report, VersionStage.UPDATE, status=ReportStatus.CLOSED)
    report.refresh_from_db()
    assert report.status == ReportStatus.CLOSED
    far = timezone.now() + 2000 * HOUR
    assert not any(d.overdue for d in stage_deadlines(report, now=far))
    assert list(overdue_reports(Report.objects.all(), now=far)) == []


def test_the_database_and_python_agree_on_which_reports_are_pending(community):
    nis2 = DeadlineProfile.objects.get(code="nis2")
    circia = DeadlineProfile.objects.get(code="circia")
    reports = [
        report_for(community.bank_a_reporter, community.bank_a, **detected(1)),
        report_for(community.bank_a_reporter, community.bank_a, **detected(40)),
        report_for(community.bank_b_reporter, community.bank_b, deadline_profile=nis2, **detected(5)),
        report_for(
            community.hospital_reporter,
            community.hospital,
            deadline_profile=circia,
            ransom_paid=True,
            **detected(3),
        ),
        report_for(community.hospital_reporter, community.hospital, **detected(20)),
    ]
    add_version(reports[1], VersionStage.UPDATE)
    add_version(reports[4], VersionStage.FINAL)
    start = timezone.now()
    for hours in (0, 10, 22, 30, 60, 75, 100, 500, 700, 800):
        now = start + hours * HOUR
        for fraction in (0.75, 1.0):
            expected = {
                report.pk
                for report in reports
                if any(
                    d.fulfilled_by is None and now > d.starts_at + (d.due_at - d.starts_at) * fraction
                    for d in stage_deadlines(report, now=now)
                )
            }
            found = set(
                reports_with_pending_stages(Report.objects.all(), now=now, fraction=fraction).values_list(
                    "pk", flat=True
                )
            )
            assert found == expected, (hours, fraction)
        overdue = {r.pk for r in reports if any(d.overdue for d in stage_deadlines(r, now=now))}
        assert set(overdue_reports(Report.objects.all(), now=now).values_list("pk", flat=True)) == overdue


def test_reporters_are_reminded_once_before_a_deadline_and_once_when_overdue(community, inbox):
    report = report_for(community.bank_a_reporter, community.bank_a, **detected(1))
    update_due = by_code(report, timezone.now())["update"].due_at

    assert remind_deadlines(now=update_due - 30 * HOUR) == 0, "three quarters of the window remain"
    assert remind_deadlines(now=update_due - 10 * HOUR) == 1
    assert remind_deadlines(now=update_due - 9 * HOUR) == 0, "once per stage"
    assert remind_deadlines(now=update_due + HOUR) == 1
    assert remind_deadlines(now=update_due + 2 * HOUR) == 0

    soon, overdue = (d.message for d in inbox.wait_for(2))
    assert [d.recipients for d in inbox.deliveries] == [[community.bank_a_reporter.email]] * 2
    assert report.title in str(soon["Subject"])
    assert str(report.pk) in soon.get_body().get_content()
    assert str(soon["Subject"]) != str(overdue["Subject"])
    reminders = report.notifications.filter(kind=NotificationKind.DEADLINE_REMINDER)
    assert sorted(reminders.values_list("state", flat=True)) == ["due_soon", "overdue"]


def ransom_paid_report(reporter, organization) -> Report:
    """A CIRCIA report whose 24-hour ransom payment stage is due soon (detected 20 hours ago)."""
    circia = DeadlineProfile.objects.get(code="circia")
    return report_for(reporter, organization, deadline_profile=circia, ransom_paid=True, **detected(20))


def test_a_run_sends_its_reminders_over_one_connection_opened_outside_any_transaction(
    community, inbox, monkeypatch
):
    opened_in_transaction = []
    open_connection = EmailBackend.open

    def open_and_note(backend):
        opened = open_connection(backend)
        if opened:
            opened_in_transaction.append(transaction.get_connection().in_atomic_block)
        return opened

    monkeypatch.setattr(EmailBackend, "open", open_and_note)
    ransom_paid_report(community.bank_a_reporter, community.bank_a)
    ransom_paid_report(community.hospital_reporter, community.hospital)

    assert remind_deadlines() == 2
    assert opened_in_transaction == [False]
    assert len(inbox.wait_for(2)) == 2


def test_a_reminder_another_run_has_just_sent_is_not_sent_again(community, inbox, monkeypatch):
    sent_meanwhile = ransom_paid_report(community.bank_a_reporter, community.bank_a)
    ransom_paid_report(community.hospital_reporter, community.hospital)
    now = timezone.now()
    # This run reads what is due, then a run beside it logs (and sends) the bank's reminder.
    read_before_the_other_run = delivery._deadline_reminders_due(now)
    assert len(read_before_the_other_run) == 2
    NotificationLog.objects.create(
        kind=NotificationKind.DEADLINE_REMINDER,
        report=sent_meanwhile,
        stage="ransom_payment",
        state="due_soon",
        recipients=1,
        sent_at=now,
    )
    monkeypatch.setattr(delivery, "_deadline_reminders_due", lambda now: read_before_the_other_run)

    assert remind_deadlines(now=now) == 1, "the hospital's reminder is still sent"
    [delivered] = inbox.wait_for(1)
    assert delivered.recipients == [community.hospital_reporter.email]
    assert sent_meanwhile.notifications.count() == 1


def test_remind_command_runs_both_reminders(community, inbox):
    report_for(community.bank_a_reporter, community.bank_a, **detected(1))
    out = io.StringIO()
    call_command("sharing", "remind", "--json", stdout=out)
    assert json.loads(out.getvalue()) == {
        "deadline_reminders": 0,
        "acknowledgement_reminders": 0,
        "idempotency_keys_purged": 0,
        "feeds_queued": 0,
        "situation_proposals_opened": 0,
    }
    assert inbox.deliveries == []


@pytest.fixture
def mail_server_down(settings):
    """SMTP settings naming a port on which nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port


def test_remind_needs_no_mail_server_when_nothing_is_due(community, mail_server_down):
    report_for(community.bank_a_reporter, community.bank_a, **detected(1))
    out = io.StringIO()
    call_command("sharing", "remind", "--json", stdout=out)
    assert json.loads(out.getvalue()) == {
        "deadline_reminders": 0,
        "acknowledgement_reminders": 0,
        "idempotency_keys_purged": 0,
        "feeds_queued": 0,
        "situation_proposals_opened": 0,
    }


def test_a_mail_server_down_fails_the_deadline_step_but_not_the_others(community, mail_server_down):
    report = ransom_paid_report(community.bank_a_reporter, community.bank_a)
    out = io.StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("sharing", "remind", "--json", stdout=out)
    assert failure.value.returncode == 1
    assert json.loads(out.getvalue()) == {
        "acknowledgement_reminders": 0,
        "idempotency_keys_purged": 0,
        "feeds_queued": 0,
        "situation_proposals_opened": 0,
        "failed": ["deadline_reminders"],
    }
    assert not report.notifications.exists(), "an unsent reminder is not logged, so it is retried"


def test_renkei_up_sends_reminders_from_a_background_loop(community, inbox):
    ransom_paid_report(community.bank_a_reporter, community.bank_a)
    loop = periodic_upkeep(interval=0.1)
    loop.start()
    try:
        [delivery] = inbox.wait_for(1, timeout=10)
    finally:
        loop.stop()
    assert not loop.thread.is_alive()
    assert delivery.recipients == [community.bank_a_reporter.email]
