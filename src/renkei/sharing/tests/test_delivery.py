"""Notifications end to end: services queue on commit, `renkei worker` runs the tasks, a real SMTP
server receives the mail. Whoever gets a message about an object is someone the access function
lets see it — checked against `restrict` for every user of the community."""

import datetime as dt

import pytest
from django.db import connection
from django.template.defaultfilters import filesizeformat
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from renkei.core.tests.worker import run_worker_until_idle as run_worker
from renkei.directory.choices import OrganizationType, Role
from renkei.directory.models import User
from renkei.directory.tests.factories import OrganizationFactory, member
from renkei.sharing import services
from renkei.sharing.choices import CommentKind, NotificationKind, Tlp
from renkei.sharing.delivery import (
    acknowledgement_reminders,
    advisory_recipients,
    fan_out_advisory,
    remind_acknowledgements,
    send_advisory_emails,
)
from renkei.sharing.models import Advisory, AdvisoryAttachment, InboxItem, Report
from renkei.sharing.services import AttachmentInput, ObservableInput
from renkei.sharing.tests.access_oracle import signed_in
from renkei.sharing.tests.delivery_support import failed_tasks, mail_by_recipient
from renkei.sharing.tests.factories import advisory_for, report_for

NARRATIVE = "インターネットバンキングのサーバーに不正アクセスの痕跡を確認した。"
OBSERVABLES = [
    ObservableInput("domain-name", "vpn-update.example"),
    ObservableInput("ipv4-addr", "198.51.100.23"),
]
IOC_FILE = AttachmentInput(
    "侵入痕跡一覧.csv", "text/csv", b"seen_at,source\n2026-11-25T01:00:00Z,198.51.100.23\n"
)


def people_who_may_see_report(report: Report) -> set[str]:
    return {
        user.email
        for user in User.objects.exclude(email="")
        if Report.objects.restrict(user).filter(pk=report.pk).exists()
    }


def people_who_may_see_advisory(advisory: Advisory) -> set[int]:
    return {
        user.pk
        for user in User.objects.all()
        if Advisory.objects.restrict(user).filter(pk=advisory.pk).exists()
    }


def subject_of(message) -> str:
    # Long Japanese subjects are folded onto a continuation line; the parser keeps its indent.
    return str(message["Subject"]).strip()


def body_of(message) -> str:
    return message.get_body().get_content()


# --- Reports ---------------------------------------------------------------------------------------


def test_a_submitted_report_is_mailed_to_its_audience_and_nobody_else(community, inbox):
    report = report_for(community.bank_a_reporter, community.bank_a)
    run_worker()
    assert failed_tasks() == []

    expected = people_who_may_see_report(report) - {community.bank_a_reporter.email}
    assert expected == {
        community.bank_a_admin.email,
        community.fsa_coordinator.email,
        community.nisc_coordinator.email,
    }
    messages = mail_by_recipient(inbox.wait_for(len(expected)))
    assert set(messages) == expected
    for outsider in (
        community.bank_b_reporter,
        community.ceptoar_officer,
        community.hospital_reporter,
        community.mhlw_coordinator,
    ):
        assert outsider.email not in messages
    message = messages[community.fsa_coordinator.email]
    assert subject_of(message).startswith("[TLP:AMBER] ")
    assert report.title in subject_of(message)
    body = body_of(message)
    assert "TLP:AMBER" in body
    assert report.sector.name_ja in body
    assert NARRATIVE in body, "AMBER narrative travels by mail"
    assert f"https://renkei.example.jp/sharing/reports/{report.pk}/" in body


def test_a_red_report_is_mailed_only_to_named_people_without_its_narrative(community, inbox):
    officer = member(community.bank_a, Role.OFFICER, "bank_a_officer")
    report = report_for(community.bank_a_reporter, community.bank_a, tlp=Tlp.RED)
    run_worker()

    named = {community.fsa_coordinator.email, community.nisc_coordinator.email}
    expected = people_who_may_see_report(report) - {community.bank_a_reporter.email}
    assert expected == named | {officer.email}
    messages = mail_by_recipient(inbox.wait_for(len(expected)))
    assert set(messages) == expected
    assert community.bank_a_admin.email not in messages, "an organization grant on RED grants nothing"
    for message in messages.values():
        assert subject_of(message).startswith("[TLP:RED] ")
        assert NARRATIVE not in body_of(message)
        assert str(report.pk) in body_of(message)


def test_amber_strict_mail_carries_no_narrative(community, inbox):
    report_for(community.bank_a_reporter, community.bank_a, tlp=Tlp.AMBER_STRICT)
    run_worker()
    for delivery in inbox.wait_for(3):
        assert NARRATIVE not in body_of(delivery.message)


def test_report_mail_is_in_each_recipients_language(community, inbox):
    community.fsa_coordinator.language = "en"
    community.fsa_coordinator.save()
    report_for(community.bank_a_reporter, community.bank_a)
    run_worker()

    messages = mail_by_recipient(inbox.wait_for(3))
    english = messages[community.fsa_coordinator.email]
    assert "New incident report" in subject_of(english)
    assert f"Sector: {community.finance.name_en}" in body_of(english)
    # Names from the directory follow the language even before the catalogue has the new messages.
    japanese = body_of(messages[community.nisc_coordinator.email])
    assert community.finance.name_ja in japanese
    assert community.finance.name_en not in japanese


def test_questions_reach_the_reporting_organization_and_answers_the_asker(community, inbox):
    report = report_for(community.bank_a_reporter, community.bank_a)
    run_worker()
    already = len(inbox.wait_for(3))

    question = services.report_comment(
        author=community.fsa_coordinator,
        report=report,
        body="影響を受けた口座数を教えてください。",
        kind=CommentKind.QUESTION,
    )
    run_worker()
    asked = mail_by_recipient(inbox.wait_for(already + 2)[already:])
    assert set(asked) == {community.bank_a_reporter.email, community.bank_a_admin.email}
    assert "影響を受けた口座数を教えてください。" in body_of(asked[community.bank_a_reporter.email])

    services.report_comment(
        author=community.bank_a_reporter,
        report=report,
        body="約120口座です。",
        kind=CommentKind.ANSWER,
        parent=question,
    )
    run_worker()
    answered = mail_by_recipient(inbox.wait_for(already + 3)[already + 2 :])
    assert set(answered) == {community.fsa_coordinator.email}
    assert "約120口座です。" in body_of(answered[community.fsa_coordinator.email])
    assert failed_tasks() == []


def test_a_forward_tells_only_the_people_it_added(community, inbox):
    report = report_for(community.bank_a_reporter, community.bank_a)
    run_worker()
    already = len(inbox.wait_for(3))

    services.report_forward(actor=community.nisc_coordinator, report=report, organizations=[community.bank_b])
    run_worker()
    first = mail_by_recipient(inbox.wait_for(already + 1)[already:])
    assert set(first) == {community.bank_b_reporter.email}

    services.report_forward(
        actor=community.nisc_coordinator, report=report, organizations=[community.hospital]
    )
    run_worker()
    second = mail_by_recipient(inbox.wait_for(already + 2)[already + 1 :])
    assert set(second) == {community.hospital_reporter.email}
    assert failed_tasks() == []


# --- Advisories ------------------------------------------------------------------------------------


def test_an_advisory_to_a_sector_reaches_every_inbox_and_mailbox_in_it_and_no_other(community, inbox):
    advisory = advisory_for(community.nisc_coordinator, community.nisc, sectors=[community.finance])
    run_worker()
    assert failed_tasks() == []

    inbox_users = set(InboxItem.objects.filter(advisory=advisory).values_list("user_id", flat=True))
    issuers = set(community.nisc.memberships.values_list("user_id", flat=True))
    visible = people_who_may_see_advisory(advisory)
    assert inbox_users == visible - issuers
    assert {
        community.bank_a_reporter.pk,
        community.bank_a_admin.pk,
        community.bank_b_reporter.pk,
    } <= inbox_users
    assert community.hospital_reporter.pk not in inbox_users
    assert community.mhlw_coordinator.pk not in inbox_users

    emails = set(User.objects.filter(pk__in=inbox_users).exclude(email="").values_list("email", flat=True))
    messages = mail_by_recipient(inbox.wait_for(len(emails)))
    assert set(messages) == emails
    message = messages[community.bank_b_reporter.email]
    assert subject_of(message).startswith("[TLP:AMBER] ")
    assert advisory.body in body_of(message)
    assert f"https://renkei.example.jp/sharing/advisories/{advisory.pk}/" in body_of(message)


def test_a_red_advisory_reaches_only_the_named_people(community, inbox):
    advisory = advisory_for(
        community.nisc_coordinator, community.nisc, tlp=Tlp.RED, people=[community.bank_a_admin]
    )
    run_worker()
    assert set(InboxItem.objects.filter(advisory=advisory).values_list("user_id", flat=True)) == {
        community.bank_a_admin.pk
    }
    [delivery] = inbox.wait_for(1)
    assert delivery.recipients == [community.bank_a_admin.email]
    assert advisory.body not in body_of(delivery.message), "no RED content in mail"


@pytest.mark.parametrize("tlp", [Tlp.GREEN, Tlp.AMBER])
def test_advisory_mail_lists_observables_and_links_to_attachments_it_does_not_carry(community, inbox, tlp):
    advisory = advisory_for(
        community.nisc_coordinator,
        community.nisc,
        tlp=tlp,
        organizations=[community.bank_b],
        observables=OBSERVABLES,
        attachments=[IOC_FILE],
    )
    run_worker()
    [delivery] = inbox.wait_for(1)
    assert delivery.recipients == [community.bank_b_reporter.email]
    message = delivery.message
    assert not message.is_multipart(), "the file itself never travels by mail"
    lines = body_of(message).splitlines()
    assert "domain-name vpn-update.example" in lines
    assert "ipv4-addr 198.51.100.23" in lines

    attachment = AdvisoryAttachment.objects.get(advisory=advisory)
    download = reverse("sharing:advisory_attachment_download", args=[advisory.pk, attachment.pk])
    assert f"{IOC_FILE.filename} ({filesizeformat(len(IOC_FILE.content))})" in lines
    assert f"https://renkei.example.jp{download}" in lines
    response = signed_in(community.bank_b_reporter).get(download)
    assert b"".join(response.streaming_content) == IOC_FILE.content, "the link in the mail downloads it"


@pytest.mark.parametrize("tlp", [Tlp.AMBER_STRICT, Tlp.RED])
def test_restricted_advisory_mail_names_no_observable_and_no_file(community, inbox, tlp):
    # RED goes to named people only.
    audience = (
        {"people": [community.bank_b_reporter]} if tlp == Tlp.RED else {"organizations": [community.bank_b]}
    )
    advisory = advisory_for(
        community.nisc_coordinator,
        community.nisc,
        tlp=tlp,
        **audience,
        observables=OBSERVABLES,
        attachments=[IOC_FILE],
    )
    run_worker()
    [delivery] = inbox.wait_for(1)
    body = body_of(delivery.message)
    assert f"https://renkei.example.jp/sharing/advisories/{advisory.pk}/" in body
    for secret in ("vpn-update.example", "198.51.100.23", IOC_FILE.filename, "/attachments/"):
        assert secret not in body


def test_advisory_mail_reads_observables_and_attachments_once_per_batch(community, inbox):
    advisory = advisory_for(
        community.nisc_coordinator,
        community.nisc,
        sectors=[community.finance],
        observables=OBSERVABLES,
        attachments=[IOC_FILE, AttachmentInput("手順.txt", "text/plain", b"patch now")],
    )
    community.bank_b_reporter.language = "en"
    community.bank_b_reporter.save()
    people = set(advisory_recipients(advisory).values_list("user_id", flat=True))
    with CaptureQueriesContext(connection) as queries:
        sent = send_advisory_emails(advisory_id=str(advisory.pk), user_ids=list(people))
    assert sent == len(people) > 2
    for table in ("sharing_advisoryobservable", "sharing_advisoryattachment"):
        assert sum(f'FROM "{table}"' in query["sql"] for query in queries) == 1, table


@pytest.mark.parametrize(
    "audience",
    [
        {"all_ci": True},
        {"sectors": ["finance", "medical"]},
        {"organization_types": [OrganizationType.CEPTOAR, OrganizationType.SECTOR_MINISTRY]},
        {"organizations": ["bank_b"], "people": ["hospital_reporter", "stranded"]},
        {"tlp": Tlp.RED, "people": ["hospital_reporter", "bank_b_reporter", "stranded"]},
    ],
)
def test_advisory_recipients_are_exactly_whom_the_access_rule_lets_see_it(community, audience):
    gone = member(community.bank_a, Role.OFFICER, "gone")
    gone.is_active = False
    gone.save()
    closed = OrganizationFactory(sectors=[community.finance], active=False)
    closed_member = member(closed, Role.REPORTER, "closed_member")
    # Every organization of theirs is inactive: named, they may see the advisory all the same.
    community.stranded = member(closed, Role.OFFICER, "stranded")
    member(community.bank_b, Role.OFFICER, "bank_b_two_roles")
    User.objects.get(username="bank_b_two_roles").memberships.create(
        organization=community.hospital, role=Role.REPORTER
    )
    data = dict(audience)
    data["organizations"] = [getattr(community, key) for key in data.get("organizations", [])]
    data["people"] = [getattr(community, key) for key in data.get("people", [])]
    advisory = advisory_for(community.nisc_coordinator, community.nisc, **data)

    recipients = set(advisory_recipients(advisory).values_list("user_id", flat=True))
    issuers = set(community.nisc.memberships.values_list("user_id", flat=True))
    visible = people_who_may_see_advisory(advisory)
    assert recipients - issuers == visible - issuers
    assert gone.pk not in recipients
    assert closed_member.pk not in recipients, "an inactive organization reaches nobody as a whole"

    fan_out_advisory(advisory_id=str(advisory.pk))
    assert set(InboxItem.objects.filter(advisory=advisory).values_list("user_id", flat=True)) == recipients
    fan_out_advisory(advisory_id=str(advisory.pk))
    assert InboxItem.objects.filter(advisory=advisory).count() == len(recipients), (
        "running twice adds nothing"
    )


def test_named_people_without_an_active_organization_are_told_like_everyone_who_may_see_it(community, inbox):
    closed = OrganizationFactory()
    stranded = member(closed, Role.OFFICER, "stranded")
    moved = member(closed, Role.OFFICER, "moved")
    successor = OrganizationFactory()
    moved.memberships.create(organization=successor, role=Role.REPORTER)
    closed.active = False
    closed.save()
    advisory = advisory_for(
        community.nisc_coordinator, community.nisc, organizations=[community.bank_b], people=[stranded, moved]
    )
    run_worker()
    assert failed_tasks() == []

    assert Advisory.objects.restrict(stranded).filter(pk=advisory.pk).exists()
    inbox_rows = dict(InboxItem.objects.filter(advisory=advisory).values_list("user_id", "organization_id"))
    assert inbox_rows == {
        community.bank_b_reporter.pk: community.bank_b.pk,
        stranded.pk: closed.pk,
        moved.pk: successor.pk,  # an active organization before the lower-numbered inactive one
    }
    messages = mail_by_recipient(inbox.wait_for(3))
    assert set(messages) == {community.bank_b_reporter.email, stranded.email, moved.email}


def test_fan_out_does_not_query_per_person(community):
    def fan_out_queries() -> tuple[int, int]:
        """(reads, writes): writes are batched inserts of inbox rows and queued e-mail tasks."""
        advisory = advisory_for(community.nisc_coordinator, community.nisc, sectors=[community.finance])
        with CaptureQueriesContext(connection) as queries:
            fan_out_advisory(advisory_id=str(advisory.pk))
        writes = sum(1 for query in queries if query["sql"].startswith("INSERT"))
        return len(queries) - writes, writes

    reads, _writes = fan_out_queries()
    for number in range(300):
        member(community.bank_b, Role.ANALYST, f"bank_b_analyst_{number}")
    more_reads, more_writes = fan_out_queries()
    assert more_reads == reads
    assert more_writes <= 8, "305 people: a few batches, not a query each"


# --- Acknowledgement reminders ---------------------------------------------------------------------


def test_reminders_go_to_organizations_that_have_not_acknowledged(community, inbox):
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
    services.advisory_acknowledge(
        user=community.bank_a_admin, advisory=advisory, organization=community.bank_a
    )
    InboxItem.objects.filter(advisory=advisory).update(read_at=timezone.now())

    assert remind_acknowledgements(now=due - dt.timedelta(hours=2)) == 0, "too early"
    assert remind_acknowledgements(now=due - dt.timedelta(minutes=30)) == 1
    run_worker()

    reminded = mail_by_recipient(inbox.wait_for(fanned_out + 2)[fanned_out:])
    # bank B's officer and the CEPTOAR's officer; bank A acknowledged, reporters are not reminded.
    assert set(reminded) == {bank_b_officer.email, community.ceptoar_officer.email}
    assert "[TLP:AMBER]" in subject_of(reminded[bank_b_officer.email])
    unread = set(InboxItem.objects.filter(advisory=advisory, read_at=None).values_list("user_id", flat=True))
    assert unread == {bank_b_officer.pk, community.ceptoar_officer.pk}

    [sent] = acknowledgement_reminders(advisory)
    assert community.bank_b.pk in sent["organizations"]
    assert community.bank_a.pk not in sent["organizations"]
    assert sent["recipients"] == 2
    assert advisory.notifications.filter(kind=NotificationKind.ACKNOWLEDGEMENT_REMINDER).count() == 1

    assert remind_acknowledgements(now=due - dt.timedelta(minutes=20)) == 0, "once a day at most"
    assert remind_acknowledgements(now=due + dt.timedelta(hours=24)) == 1, "again the next day"
    assert remind_acknowledgements(now=due + dt.timedelta(days=8)) == 0, "gives up after a week"
    assert failed_tasks() == []
