"""Who hears about a shared object, and what they are told: inbox rows, e-mail and webhooks.

Recipients are always derived from the models' access rules (sharing/models.py):

- Reports have small audiences (a few organizations and named people), so every candidate is
  checked with `Report.objects.restrict(user)` itself before being told anything.
- Advisories may reach 30,000 people, where one access query per person is too slow. Their
  recipients come from `advisory_recipients`, the access rule's audience clause read the other way
  round (which memberships match the audience entries) as one query; test_delivery.py checks for
  every user of the test community that it selects exactly the people
  `Advisory.objects.restrict(user)` lets see the advisory (issuers see their own without an inbox row).

E-mail content follows the TLP label: the narrative (or a comment's text), and an advisory's
observables and its files' names and download links, are only put into mail for CLEAR, GREEN and
AMBER; files are never attached. AMBER+STRICT and RED mail carries the title, sector, label and a
link: mail leaves Renkei's hands (relays, mailbox archives, forwarding rules), so the most
restricted content is only read after signing in.

Reminders sent, and up to which audience entry people were told about a report, are kept in
NotificationLog, which also keeps them from being sent twice. Runs that overlap (the upkeep loop of
`renkei up` beside `renkei sharing remind`, two workers notifying about one report) take turns on
the advisory's or report's row and read the log again once it is theirs.
"""

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from itertools import islice

from django.conf import settings
from django.core import mail
from django.db import IntegrityError, transaction
from django.db.models import Max, Prefetch, Q, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from renkei.core.access import NOTHING, who_may
from renkei.core.idempotency import idempotency_keys_purge
from renkei.core.periodic import Periodic
from renkei.directory.choices import Role
from renkei.directory.models import Membership, Organization, User
from renkei.sharing.choices import CommentKind, GrantReason, NotificationKind, ReportStatus, Tlp
from renkei.sharing.deadlines import StageDeadline, reports_with_pending_stages, stage_deadlines
from renkei.sharing.models import (
    COMMUNITY_TYPES,
    REPORTING_ROLES,
    Advisory,
    AdvisoryAttachment,
    InboxItem,
    NotificationLog,
    Report,
    ReportComment,
    ReportGrant,
)

logger = logging.getLogger(__name__)

# One e-mail task per this many recipients: large enough to keep the queue short for an all-CI
# advisory (30,000 people → 300 tasks), small enough that a failing task retries little.
EMAIL_BATCH_SIZE = 100
# Labels whose narrative may travel by e-mail (see the module docstring).
NARRATIVE_IN_MAIL = (Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER)
NARRATIVE_EXCERPT_CHARS = 1000
REPORT_EVENTS = ("submitted", "updated", "question", "answer", "forwarded")
# Who is reminded to acknowledge on behalf of an organization.
ACKNOWLEDGING_ROLES = (Role.OFFICER, Role.COORDINATOR, Role.ORG_ADMIN)
REMINDER_INTERVAL = dt.timedelta(hours=24)
# Remind when this share of the time between issue (or detection) and the due time has passed.
REMINDER_AFTER_FRACTION = 0.75
# Stop reminding about acknowledgements this long after the due time.
ACK_REMINDER_GIVE_UP = dt.timedelta(days=7)
REMINDER_LOOP_SECONDS = 15 * 60


def _batched(items: Sequence, size: int):
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def absolute_url(name: str, *args, namespace: str = "sharing") -> str:
    """A link into Renkei for e-mail and webhooks: RENKEI_BASE_URL and the URL `<namespace>:<name>`."""
    return settings.RENKEI_BASE_URL.rstrip("/") + reverse(f"{namespace}:{name}", args=args)


def _language(user_language: str) -> str:
    return user_language or settings.LANGUAGE_CODE


# --- Audiences -------------------------------------------------------------------------------------


def _sector_organizations(sector_ids: Iterable[int]) -> QuerySet:
    return Organization.sectors.through.objects.filter(sector_id__in=list(sector_ids)).values(
        "organization_id"
    )


def _audience_matches(advisory: Advisory) -> tuple[Q, Q]:
    """Membership filters for the audience: (whole groups it names, people it names).

    This is `Advisory.access_rule`'s audience clause inverted; keep the two in step.
    """
    entries = list(advisory.audience.all())
    named = Q(user_id__in=[e.user_id for e in entries if e.user_id])
    if advisory.tlp == Tlp.RED:
        # RED reaches named people only, never whole organizations.
        return NOTHING, named
    groups = NOTHING
    sectors = [e.sector_id for e in entries if e.sector_id]
    types = [e.organization_type for e in entries if e.organization_type]
    organizations = [e.organization_id for e in entries if e.organization_id]
    if any(e.all_ci for e in entries):
        groups |= Q(organization__type__in=COMMUNITY_TYPES)
    if sectors:
        groups |= Q(organization_id__in=_sector_organizations(sectors))
    if types:
        groups |= Q(organization__type__in=types)
    if organizations:
        groups |= Q(organization_id__in=organizations)
    return groups, named


def advisory_recipient_memberships(advisory: Advisory) -> QuerySet:
    """Memberships (of active people in active organizations) through which the advisory's audience
    reaches a person: the organizations it reached, for acknowledgements. A person appears once per
    matching membership. Who is told is `advisory_recipients`."""
    groups, named = _audience_matches(advisory)
    return Membership.objects.filter(groups | named, user__is_active=True, organization__active=True)


def advisory_recipients(advisory: Advisory) -> QuerySet:
    """Memberships of everyone the advisory reaches, ordered by person with the one their inbox row
    is kept under first (`_one_row_per_person` picks it).

    These are `advisory_recipient_memberships` plus every membership of the people the audience
    names: the access rule lets a named person see the advisory even when none of their
    organizations is active, so they are told all the same. Active organizations come first; an
    inactive one (the lowest id) only for a person who has no other.
    """
    groups, named = _audience_matches(advisory)
    return Membership.objects.filter(
        (groups & Q(organization__active=True)) | named, user__is_active=True
    ).order_by("user_id", "-organization__active", "organization_id")


def advisory_audience_organizations(advisory: Advisory) -> QuerySet:
    """Active organizations the audience names as a whole (not through one person): webhook targets."""
    if advisory.tlp == Tlp.RED:
        return Organization.objects.none()
    entries = list(advisory.audience.all())
    matches = NOTHING
    sectors = [e.sector_id for e in entries if e.sector_id]
    if any(e.all_ci for e in entries):
        matches |= Q(type__in=COMMUNITY_TYPES)
    if sectors:
        matches |= Q(pk__in=_sector_organizations(sectors))
    matches |= Q(type__in=[e.organization_type for e in entries if e.organization_type])
    matches |= Q(pk__in=[e.organization_id for e in entries if e.organization_id])
    return Organization.objects.filter(matches, active=True)


def _one_row_per_person(rows: Iterable[tuple]) -> dict[int, tuple]:
    """First row per user id (rows ordered by user first), keyed by user id."""
    people: dict[int, tuple] = {}
    for row in rows:
        people.setdefault(row[0], row)
    return people


def report_may_see(report: Report, users: Iterable[User]) -> list[User]:
    """The users the access function lets see `report`."""
    return who_may(report, [user for user in users if user.is_active])


def _report_audience_candidates(report: Report) -> QuerySet:
    """Everyone who could possibly see the report; `report_may_see` decides."""
    granted_orgs = ReportGrant.objects.filter(report=report, organization__isnull=False).values(
        "organization_id"
    )
    named = ReportGrant.objects.filter(report=report, user__isnull=False).values("user_id")
    members = Membership.objects.filter(organization_id__in=granted_orgs, organization__active=True)
    return User.objects.filter(
        Q(pk__in=members.values("user_id")) | Q(pk__in=named) | Q(pk=report.reporter_id), is_active=True
    )


# --- Reports ---------------------------------------------------------------------------------------


def _report_event_recipients(report: Report, event: str) -> tuple[list[User], ReportComment | None]:
    """Who should hear about `event`, before the access check, and the comment it concerns."""
    if event == "submitted":
        _record_audience_told(report, event)
        return list(_report_audience_candidates(report).exclude(pk=report.reporter_id)), None
    if event == "updated":
        latest = report.versions.order_by("-number").first()
        author_id = latest.author_id if latest else report.reporter_id
        return list(_report_audience_candidates(report).exclude(pk=author_id)), None
    if event == "question":
        question = report.comments.filter(kind=CommentKind.QUESTION).order_by("-created_at", "-pk").first()
        if question is None:
            return [], None
        reporting_members = Membership.objects.filter(
            organization_id=report.organization_id, role__in=REPORTING_ROLES
        ).values("user_id")
        people = User.objects.filter(
            Q(pk=report.reporter_id) | Q(pk__in=reporting_members), is_active=True
        ).exclude(pk=question.author_id)
        return list(people), question
    if event == "answer":
        answer = (
            report.comments.filter(kind=CommentKind.ANSWER)
            .select_related("parent__author")
            .order_by("-created_at", "-pk")
            .first()
        )
        if answer is None or answer.parent is None or answer.parent.author_id == answer.author_id:
            return [], answer
        return [answer.parent.author], answer
    if event == "forwarded":
        return _newly_forwarded_people(report), None
    raise ValueError(f"unknown report event {event!r}")


def _record_audience_told(report: Report, event: str, grants: QuerySet | None = None) -> int | None:
    """Note up to which audience entry people have been told about the report, so that a forward
    only tells the people it added. Returns that entry's id."""
    grants = ReportGrant.objects.filter(report=report) if grants is None else grants
    through = grants.aggregate(newest=Max("pk"))["newest"]
    if through is not None:
        NotificationLog.objects.create(
            kind=NotificationKind.AUDIENCE_TOLD, report=report, event=event, through_grant=through
        )
    return through


def _newly_forwarded_people(report: Report) -> list[User]:
    """People reached by audience entries added since people were last told about the report."""
    told_through = (
        report.notifications.filter(kind=NotificationKind.AUDIENCE_TOLD)
        .order_by("-pk")
        .values_list("through_grant", flat=True)
        .first()
    )
    grants = ReportGrant.objects.filter(report=report, reason__in=[GrantReason.FORWARDED, GrantReason.NAMED])
    if told_through is not None:
        grants = grants.filter(pk__gt=told_through)
    if _record_audience_told(report, "forwarded", grants) is None:
        return []
    orgs = grants.filter(organization__isnull=False).values("organization_id")
    named = grants.filter(user__isnull=False).values("user_id")
    members = Membership.objects.filter(organization_id__in=orgs, organization__active=True).values("user_id")
    return list(User.objects.filter(Q(pk__in=members) | Q(pk__in=named), is_active=True))


@transaction.atomic
def notify_report(*, report_id: str, event: str) -> int:
    """E-mail everyone concerned by `event` who may see the report; returns the number queued.

    Atomic: the note of who was told and the queued e-mail tasks commit together. The report's row
    is locked first, so that two notifications of one report (two forwards in quick succession) take
    turns: the second reads who the first told and does not tell them again."""
    from renkei.sharing.tasks import email_report_batch

    if event not in REPORT_EVENTS:
        raise ValueError(f"unknown report event {event!r}")
    # NO KEY: grants and comments pointing at the report may still be added meanwhile.
    report = Report.objects.select_for_update(no_key=True).filter(pk=report_id).first()
    if report is None:
        return 0
    candidates, comment = _report_event_recipients(report, event)
    recipients = [user.pk for user in report_may_see(report, candidates) if user.email]
    for chunk in _batched(recipients, EMAIL_BATCH_SIZE):
        email_report_batch.enqueue(
            report_id=str(report.pk),
            event=event,
            user_ids=chunk,
            comment_id=comment.pk if comment else None,
        )
    return len(recipients)


def _report_message(report: Report, event: str, comment: ReportComment | None, language: str):
    with translation.override(language):
        context = {
            "report": report,
            "event": event,
            "tlp_label": Tlp(report.tlp).label,
            "sector": report.sector.name,
            "organization": report.organization.name,
            "narrative": report.narrative[:NARRATIVE_EXCERPT_CHARS]
            if report.tlp in NARRATIVE_IN_MAIL
            else "",
            "comment": comment.body[:NARRATIVE_EXCERPT_CHARS]
            if comment is not None and report.tlp in NARRATIVE_IN_MAIL
            else "",
            "url": absolute_url("report_detail", report.pk),
        }
        subject = render_to_string("sharing/email/report_subject.txt", context)
        body = render_to_string("sharing/email/report_body.txt", context)
    return " ".join(subject.split()), body


def send_report_emails(*, report_id: str, event: str, user_ids: Sequence[int], comment_id=None) -> int:
    """Send one message per person, each in their language, re-checking access at send time."""
    report = Report.objects.select_related("sector", "organization").filter(pk=report_id).first()
    if report is None:
        return 0
    comment = ReportComment.objects.filter(pk=comment_id, report=report).first() if comment_id else None
    people = report_may_see(report, User.objects.filter(pk__in=user_ids).exclude(email=""))
    rendered: dict[str, tuple[str, str]] = {}
    messages = []
    for person in people:
        language = _language(person.language)
        if language not in rendered:
            rendered[language] = _report_message(report, event, comment, language)
        subject, body = rendered[language]
        messages.append(mail.EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [person.email]))
    return _send(messages)


def _send(messages: list[mail.EmailMessage]) -> int:
    if not messages:
        return 0
    with mail.get_connection() as connection:
        return connection.send_messages(messages)


# --- Advisories ------------------------------------------------------------------------------------


def fan_out_advisory(*, advisory_id: str) -> int:
    """Inbox rows for the whole audience, then e-mail tasks per batch and one webhook task per endpoint.

    A constant number of queries for the rows however large the audience; safe to run twice
    (inbox rows are unique per person, e-mails and webhooks are only queued for new rows).
    """
    from renkei.sharing.tasks import email_advisory_batch
    from renkei.sharing.webhooks import queue_webhooks

    advisory = Advisory.objects.prefetch_related("audience").filter(pk=advisory_id).first()
    if advisory is None:
        return 0
    rows = advisory_recipients(advisory).values_list("user_id", "organization_id", "user__email")
    people = _one_row_per_person(rows)
    already = set(InboxItem.objects.filter(advisory=advisory).values_list("user_id", flat=True))
    new = [row for user_id, row in people.items() if user_id not in already]
    InboxItem.objects.bulk_create(
        [InboxItem(advisory=advisory, user_id=user_id, organization_id=org_id) for user_id, org_id, _ in new],
        batch_size=2000,
        ignore_conflicts=True,
    )
    with_email = [user_id for user_id, _org, email in new if email]
    for chunk in _batched(with_email, EMAIL_BATCH_SIZE):
        email_advisory_batch.enqueue(advisory_id=str(advisory.pk), user_ids=list(chunk))
    if not already:
        queue_webhooks(advisory)
    return len(new)


def _attachment_links(advisory: Advisory) -> list[dict]:
    """Name, size and download page of each file: the files themselves never travel by mail."""
    return [
        {
            "name": attachment.filename,
            "size": attachment.blob.size,
            "url": absolute_url("advisory_attachment_download", advisory.pk, attachment.pk),
        }
        for attachment in advisory.attachments.all()
    ]


def _advisory_message(advisory: Advisory, language: str, *, reminder: bool):
    """Subject and body; observables and attachments come from `advisory`'s prefetched rows."""
    content_in_mail = advisory.tlp in NARRATIVE_IN_MAIL
    with translation.override(language):
        context = {
            "advisory": advisory,
            "reminder": reminder,
            "tlp_label": Tlp(advisory.tlp).label,
            "severity": advisory.get_severity_display(),
            "issuer": advisory.issuer.name,
            "body": advisory.body[:NARRATIVE_EXCERPT_CHARS] if content_in_mail else "",
            "observables": advisory.observables.all() if content_in_mail else (),
            "attachments": _attachment_links(advisory) if content_in_mail else [],
            "url": absolute_url("advisory_detail", advisory.pk),
        }
        subject = render_to_string("sharing/email/advisory_subject.txt", context)
        body = render_to_string("sharing/email/advisory_body.txt", context)
    return " ".join(subject.split()), body


def send_advisory_emails(*, advisory_id: str, user_ids: Sequence[int], reminder: bool = False) -> int:
    """Send one message per person of the batch who is still in the audience, in their language."""
    advisory = (
        Advisory.objects.select_related("issuer")
        .prefetch_related(
            "observables",
            Prefetch("attachments", queryset=AdvisoryAttachment.objects.select_related("blob")),
        )
        .filter(pk=advisory_id)
        .first()
    )
    if advisory is None:
        return 0
    people = (
        User.objects.filter(
            pk__in=advisory_recipients(advisory).filter(user_id__in=user_ids).values("user_id")
        )
        .exclude(email="")
        .values_list("email", "language")
    )
    rendered: dict[str, tuple[str, str]] = {}
    messages = []
    for email, user_language in people:
        language = _language(user_language)
        if language not in rendered:
            rendered[language] = _advisory_message(advisory, language, reminder=reminder)
        subject, body = rendered[language]
        messages.append(mail.EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [email]))
    return _send(messages)


# --- Reminders -------------------------------------------------------------------------------------


def acknowledgement_reminders(advisory: Advisory) -> list[dict]:
    """Acknowledgement reminders sent for `advisory` ({at, organizations, recipients}), oldest first,
    for the issuer's acknowledgement table."""
    return [
        {"at": at, "organizations": organizations, "recipients": recipients}
        for at, organizations, recipients in advisory.notifications.filter(
            kind=NotificationKind.ACKNOWLEDGEMENT_REMINDER
        ).values_list("sent_at", "organizations", "recipients")
    ]


def pending_acknowledgement_organizations(advisory: Advisory) -> QuerySet:
    """Organizations the advisory reached that have not acknowledged it."""
    reached = advisory_recipient_memberships(advisory).values("organization_id")
    return Organization.objects.filter(pk__in=reached).exclude(
        pk__in=advisory.acknowledgements.values("organization_id")
    )


def _acknowledgement_reminder_due(advisory: Advisory, last_sent, now) -> bool:
    if advisory.ack_due is not None:
        window = advisory.ack_due - advisory.created_at
        if now < advisory.created_at + window * REMINDER_AFTER_FRACTION:
            return False
        if now > advisory.ack_due + ACK_REMINDER_GIVE_UP:
            return False
    elif now < advisory.created_at + REMINDER_INTERVAL or now > advisory.created_at + ACK_REMINDER_GIVE_UP:
        return False
    return last_sent is None or now - last_sent >= REMINDER_INTERVAL


def _acknowledgement_reminder_candidates(now) -> list[Advisory]:
    """Advisories due for an acknowledgement reminder at `now`, judged by the reminders logged when
    the run began (`_acknowledgement_remind` looks again under the advisory's lock)."""
    candidates = Advisory.objects.filter(ack_required=True).filter(
        Q(ack_due__isnull=True, created_at__gte=now - ACK_REMINDER_GIVE_UP)
        | Q(ack_due__gte=now - ACK_REMINDER_GIVE_UP)
    )
    annotated = candidates.annotate(
        last_reminded=Max(
            "notifications__sent_at",
            filter=Q(notifications__kind=NotificationKind.ACKNOWLEDGEMENT_REMINDER),
        )
    )
    return [
        advisory
        for advisory in annotated
        if _acknowledgement_reminder_due(advisory, advisory.last_reminded, now)
    ]


@transaction.atomic
def _acknowledgement_remind(advisory_id, now) -> bool:
    """Remind the people of the advisory's pending organizations, if still due; whether it did.

    Runs that overlap take turns on the advisory's row, and the one that comes second finds the
    reminder the first logged. Inbox rows, log entry and queued e-mail tasks commit together (the
    database task queue is in the same database)."""
    from renkei.sharing.tasks import email_advisory_batch

    # NO KEY: acknowledgements and inbox rows pointing at the advisory may still be added meanwhile.
    advisory = Advisory.objects.select_for_update(no_key=True).filter(pk=advisory_id).first()
    if advisory is None:
        return False
    last_sent = advisory.notifications.filter(kind=NotificationKind.ACKNOWLEDGEMENT_REMINDER).aggregate(
        last=Max("sent_at")
    )["last"]
    if not _acknowledgement_reminder_due(advisory, last_sent, now):
        return False
    pending = pending_acknowledgement_organizations(advisory).values("pk")
    memberships = advisory_recipient_memberships(advisory).filter(organization_id__in=pending)
    if advisory.tlp != Tlp.RED:
        memberships = memberships.filter(role__in=ACKNOWLEDGING_ROLES)
    rows = list(memberships.order_by("user_id").values_list("user_id", "organization_id", "user__email"))
    if not rows:
        return False
    people = _one_row_per_person(rows)
    InboxItem.objects.filter(advisory=advisory, user_id__in=list(people)).update(read_at=None)
    NotificationLog.objects.create(
        kind=NotificationKind.ACKNOWLEDGEMENT_REMINDER,
        advisory=advisory,
        organizations=sorted({org for _u, org, _e in rows}),
        recipients=len(people),
        sent_at=now,
    )
    with_email = [user_id for user_id, _org, email in people.values() if email]
    for chunk in _batched(with_email, EMAIL_BATCH_SIZE):
        email_advisory_batch.enqueue(advisory_id=str(advisory.pk), user_ids=chunk, reminder=True)
    return True


def remind_acknowledgements(*, now=None) -> int:
    """Re-notify people of organizations that have not acknowledged; returns advisories reminded.

    When a due time is set: first when a quarter of the time to it remains, then daily until a
    week after it. Without one: daily from a day after issue, for a week. Officers, coordinators
    and organization administrators are reminded (for RED, the named people themselves); their
    inbox rows turn unread again and they get an e-mail.
    """
    now = now or timezone.now()
    reminded = 0
    for advisory in _acknowledgement_reminder_candidates(now):
        if _acknowledgement_remind(advisory.pk, now):
            reminded += 1
    return reminded


def _deadline_reminders_due(now) -> list[tuple[Report, StageDeadline, str]]:
    """(report, stage deadline, state) of each deadline reminder due at `now` and not logged when the
    run began (a run beside this one may log it meanwhile: the log's unique constraint catches that)."""
    reports = list(
        reports_with_pending_stages(
            Report.objects.exclude(status=ReportStatus.CLOSED), now=now, fraction=REMINDER_AFTER_FRACTION
        ).select_related("reporter", "sector", "organization", "deadline_profile")
    )
    already = set(
        NotificationLog.objects.filter(
            kind=NotificationKind.DEADLINE_REMINDER, report__in=[r.pk for r in reports]
        ).values_list("report_id", "stage", "state")
    )
    due = []
    for report in reports:
        if not report.reporter.email or not report_may_see(report, [report.reporter]):
            continue
        for deadline in stage_deadlines(report, now=now):
            state = _deadline_state(deadline)
            if state is not None and (report.pk, deadline.stage.code, state) not in already:
                due.append((report, deadline, state))
    return due


def remind_deadlines(*, now=None) -> int:
    """E-mail reporters once per stage when a quarter of its window remains and once when it is
    overdue; returns the number of reminders sent."""
    now = now or timezone.now()
    due = _deadline_reminders_due(now)
    if not due:
        return 0  # a run with nothing to send needs no mail server
    sent = 0
    # One SMTP connection for the run, opened before any transaction so that none waits on it.
    with mail.get_connection() as connection:
        for report, deadline, state in due:
            message = _deadline_message(report, deadline, state)
            # Recorded and sent together: a failed send leaves no record, so the next run retries.
            try:
                with transaction.atomic():
                    NotificationLog.objects.create(
                        kind=NotificationKind.DEADLINE_REMINDER,
                        report=report,
                        stage=deadline.stage.code,
                        state=state,
                        recipients=1,
                        sent_at=now,
                    )
                    sent += connection.send_messages([message])
            except IntegrityError:
                continue  # a reminder run beside this one has just sent it
    return sent


def _deadline_state(deadline) -> str | None:
    if deadline.fulfilled_at is not None:
        return None
    if deadline.overdue:
        return "overdue"
    if deadline.remaining <= (deadline.due_at - deadline.starts_at) * (1 - REMINDER_AFTER_FRACTION):
        return "due_soon"
    return None


def _deadline_message(report: Report, deadline: StageDeadline, state: str) -> mail.EmailMessage:
    reporter = report.reporter
    with translation.override(_language(reporter.language)):
        context = {
            "report": report,
            "stage": str(deadline.stage),
            "due_at": timezone.localtime(deadline.due_at),
            "overdue": state == "overdue",
            "tlp_label": Tlp(report.tlp).label,
            "url": absolute_url("report_detail", report.pk),
        }
        subject = render_to_string("sharing/email/deadline_subject.txt", context)
        body = render_to_string("sharing/email/deadline_body.txt", context)
    return mail.EmailMessage(" ".join(subject.split()), body, settings.DEFAULT_FROM_EMAIL, [reporter.email])


class UpkeepFailed(Exception):
    """Some upkeep steps failed (each is logged); the others ran."""

    def __init__(self, failed: list[str], done: dict[str, int]):
        super().__init__(", ".join(failed))
        self.failed, self.done = failed, done


def run_upkeep(*, now=None) -> dict[str, int]:
    """Both reminder runs, the purge of expired idempotency keys and queueing the TAXII feeds that are
    due, as `renkei sharing remind` and `renkei up` do them. Each step runs even when another fails
    (a mail server down must not stop the rest); returns what each did, or raises UpkeepFailed after
    all have run."""
    # interop and situations build on sharing, not the reverse
    from renkei.interop.feeds import feeds_due_enqueue
    from renkei.situations.services import evaluate_schedule

    steps = {
        "deadline_reminders": remind_deadlines,
        "acknowledgement_reminders": remind_acknowledgements,
        "idempotency_keys_purged": idempotency_keys_purge,
        "feeds_queued": lambda now: feeds_due_enqueue(),
        "situation_proposals_opened": evaluate_schedule,
    }
    done: dict[str, int] = {}
    failed: list[str] = []
    for name, step in steps.items():
        try:
            done[name] = step(now=now)
        except Exception:
            logger.exception("Upkeep step %s failed.", name)
            failed.append(name)
    if failed:
        raise UpkeepFailed(failed, done)
    return done


def periodic_upkeep(*, interval: float = REMINDER_LOOP_SECONDS) -> Periodic:
    """`run_upkeep` every few minutes in a daemon thread of `renkei up` (deployments with a
    separate worker run `renkei sharing remind` from cron instead)."""

    def upkeep() -> None:
        try:
            run_upkeep()
        except UpkeepFailed:
            logger.warning("The failed upkeep steps run again in %s seconds.", interval)

    return Periodic(upkeep, interval=interval, name="renkei-upkeep")
