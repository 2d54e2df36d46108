"""Every channel shows each user exactly what the rules allow — nothing more, nothing less.

test_access_properties.py checks `restrict`, search and the dashboard; this file checks the other
ways information leaves Renkei, on the same random communities and against the same oracle
(access_oracle.py): the API, attachment downloads (web and API), the web pages, e-mail and webhooks.

Delivery runs for real. Services queue their tasks in their transaction; each phase of a scenario (submit,
forward, update, issue) ends by running those callbacks, and django-tasks' ImmediateBackend runs the
queued tasks at once (the database queue's worker closes connections, which a test transaction
cannot allow; the SMTP path and the worker are covered by test_delivery.py). Django's locmem
backend collects the mail. Webhooks are posted over HTTP to one WebhookReceiver per organization,
which checks their signatures.

Every title and text carries a marker (see access_oracle.py), so each answer, page, message and
payload is also searched for the markers and ids of everything its reader may not see.
"""

import contextlib
import hashlib
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field

from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client, override_settings
from django.urls import reverse
from django_tasks.base import TaskResultStatus
from django_tasks.signals import task_finished
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from renkei.core.services import token_create
from renkei.core.tests.loopback import deny_list_without_loopback
from renkei.directory.choices import OrganizationType
from renkei.directory.models import Membership, User
from renkei.sharing.choices import Tlp, VersionStage
from renkei.sharing.delivery import NARRATIVE_IN_MAIL
from renkei.sharing.models import (
    REPORTING_ROLES,
    TRIAGE_ROLES,
    TRIAGE_TYPES,
    Advisory,
    AdvisoryAttachment,
    AnonymizedReport,
    Attachment,
    CauseCategory,
)
from renkei.sharing.services import (
    AttachmentInput,
    ReportInput,
    advisory_acknowledge,
    report_link,
    report_update,
)
from renkei.sharing.tests.access_oracle import (
    ADVISORY,
    MAX_ORGS,
    MAX_PEOPLE,
    MAX_REPORTS,
    ORGANIZATION,
    PERSON,
    REPORT,
    ROLES,
    Audience,
    Community,
    SharedReport,
    Viewer,
    action_by,
    addressed,
    advisory_file,
    build_community,
    candidate,
    forward_reports,
    in_issuer_chain,
    issue_advisories,
    marked,
    may_see_advisory,
    may_see_report,
    org_index,
    organization_addressed,
    person_index,
    pick,
    publish_copies,
    report_index,
    scenarios,
    signed_in,
    submit_reports,
    text,
    viewer,
    within_label,
)
from renkei.sharing.tests.delivery_support import WEBHOOK_PAYLOAD_FIELDS, WebhookReceiver
from renkei.sharing.webhooks import webhook_register

BASE_URL = "https://renkei.example.jp"
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ORGANIZATION_NAME = re.compile(r"組織\d+")

# Files: some with the same bytes in several reports (stored once, by SHA-256), some empty.
attachment = st.tuples(
    st.sampled_from(["evidence.bin", "ログ.txt"]),
    st.sampled_from([b"", b"same bytes in two reports", b"\x00\xff\x00"]) | st.binary(max_size=24),
)


# Channels need someone to act and someone to tell: every community here has an active national
# centre or ministry first (test_access_properties.py also covers communities without), and half of
# the memberships are in those first organizations, where people triage, forward and issue.
government = st.fixed_dictionaries(
    ORGANIZATION
    | {
        "type": st.sampled_from([OrganizationType.NATIONAL_CENTER, OrganizationType.SECTOR_MINISTRY]),
        "parent": st.none(),
        "active": st.just(True),
    }
)
channel_scenarios = scenarios(
    organizations=st.tuples(
        st.lists(government, min_size=1, max_size=2),
        st.lists(st.fixed_dictionaries(ORGANIZATION), min_size=1, max_size=MAX_ORGS - 1),
    ).map(lambda parts: (parts[0] + parts[1])[:MAX_ORGS]),
    people=st.lists(
        st.fixed_dictionaries(
            PERSON
            | {
                "memberships": st.sets(
                    st.tuples(st.integers(min_value=0, max_value=1) | org_index, st.sampled_from(ROLES)),
                    min_size=1,
                    max_size=2,
                )
            }
        ),
        min_size=3,
        max_size=MAX_PEOPLE,
    ),
    reports=st.lists(
        st.fixed_dictionaries(REPORT | {"attachments": st.lists(attachment, max_size=2)}),
        min_size=2,
        max_size=MAX_REPORTS,
    ),
    advisories=st.lists(
        st.fixed_dictionaries(ADVISORY | {"sources": st.sets(report_index, max_size=2)}).map(within_label),
        min_size=1,
        max_size=3,
    ),
    # Per person: whether they have an e-mail address, and their language.
    contacts=st.lists(
        st.tuples(st.sampled_from([True, True, True, False]), st.sampled_from(["", "ja", "en"])),
        min_size=MAX_PEOPLE,
        max_size=MAX_PEOPLE,
    ),
    updates=st.lists(
        st.fixed_dictionaries(
            {
                "report": report_index,
                "author": action_by,
                "title": text,
                "narrative": text,
                "attachments": st.lists(attachment, max_size=1),
            }
        ),
        max_size=2,
    ),
    links=st.lists(st.tuples(action_by, report_index, report_index), max_size=2),
    acks=st.lists(st.tuples(person_index, st.integers(min_value=0, max_value=2)), max_size=3),
    webhooks=st.sets(org_index, max_size=MAX_ORGS),
)


# --- A built scenario and what the oracle says about it ---------------------------------------------


@dataclass
class Seen:
    """What one user may see at one moment: object ids, what must never reach them (the markers and
    ids of everything else), and the organizations they may see named."""

    ids: set[str]
    forbidden: list[str]
    organization_names: set[str]


@dataclass
class Phase:
    """The mail one step of the scenario sent, who had to be told about what, and what each user
    could see when it was sent."""

    name: str
    messages: list
    expected: set[tuple[int, str]]  # (user pk, object id)
    seen: dict[int, Seen]


@dataclass
class World:
    spec: dict
    community: Community
    who: dict[int, Viewer]
    with_email: set[int]
    memberships: set[tuple[int, int]]  # (user pk, organization pk), active organizations only
    all_memberships: set[tuple[int, int]]  # inactive organizations included
    shared: list[SharedReport] = field(default_factory=list)
    advisories: dict[Advisory, Audience] = field(default_factory=dict)
    copies: dict[AnonymizedReport, tuple] = field(default_factory=dict)
    links: set[frozenset] = field(default_factory=set)
    acknowledged: dict[str, set[int]] = field(default_factory=dict)  # advisory id → organizations
    files: dict[str, Counter] = field(default_factory=dict)  # report id → SHA-256s of the files sent
    contents: dict[str, bytes] = field(default_factory=dict)  # SHA-256 → the bytes sent
    endpoints: dict[int, WebhookReceiver] = field(default_factory=dict)  # organization pk → receiver
    phases: list[Phase] = field(default_factory=list)

    @property
    def people(self) -> list[User]:
        return self.community.people

    def reports_for(self, user: User) -> list[SharedReport]:
        return [s for s in self.shared if may_see_report(self.who[user.pk], s)]

    def advisories_for(self, user: User) -> list[Advisory]:
        return [a for a, to in self.advisories.items() if may_see_advisory(self.who[user.pk], to)]

    def copies_for(self, user: User) -> list[AnonymizedReport]:
        return [c for c, (to, *_rest) in self.copies.items() if addressed(self.who[user.pk], to)]

    def seen_by(self, user: User) -> Seen:
        reports, advisories, copies = self.reports_for(user), self.advisories_for(user), self.copies_for(user)
        forbidden = []
        for s in self.shared:
            if s not in reports:
                forbidden += [str(s.report.pk), f"【報{s.marker}】", f"【述{s.marker}】"]
        for advisory, to in self.advisories.items():
            if advisory not in advisories:
                forbidden += [str(advisory.pk), f"【警{to.marker}】", f"【警文{to.marker}】"]
        for copy, (to, *_rest) in self.copies.items():
            if copy not in copies:
                forbidden += [str(copy.pk), f"【匿{to.marker}】", f"【匿述{to.marker}】"]
        names = {o.name_ja for o in self.community.orgs if o.pk in self.who[user.pk].orgs}
        names |= {s.report.organization.name_ja for s in reports}
        names |= {a.issuer.name_ja for a in advisories}
        return Seen(
            ids={str(s.report.pk) for s in reports} | {str(a.pk) for a in advisories},
            forbidden=forbidden,
            organization_names=names,
        )

    def reached_organizations(self, to: Audience) -> set[int]:
        """Organizations an advisory reaches through at least one of their people."""
        by_pk = {o.pk: o for o in self.community.orgs}
        return {
            org
            for user, org in self.memberships
            if user in to.people or organization_addressed(by_pk[org], to, self.community)
        }

    def inbox_organization(self, user: User, to: Audience) -> int | None:
        """The organization an advisory is delivered to a person for (their first one it reaches),
        or None when it gives them no inbox row."""
        by_pk = {o.pk: o for o in self.community.orgs}
        reached = [
            org
            for member, org in self.memberships
            if member == user.pk
            and (user.pk in to.people or organization_addressed(by_pk[org], to, self.community))
        ]
        if not reached and user.pk in to.people:
            # Named, with every organization inactive: told all the same, under the first of them.
            reached = [org for member, org in self.all_memberships if member == user.pk]
        return min(reached, default=None)


def assert_tells_nothing_more(content: str, seen: Seen, where: str) -> None:
    for secret in seen.forbidden:
        assert secret not in content, f"{where} shows {secret}, which its reader may not see"


def linked(content: str, kind: str) -> set[str]:
    """The ids of the reports, advisories or anonymized copies a page links to."""
    return set(re.findall(rf'href="/sharing/{kind}/({UUID})/"', content))


def strings_in(document) -> list[str]:
    """Every key and string value of a JSON document."""
    if isinstance(document, dict):
        return [*document, *(s for value in document.values() for s in strings_in(value))]
    if isinstance(document, list):
        return [s for value in document for s in strings_in(value)]
    return [document] if isinstance(document, str) else []


@override_settings(
    EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
    TASKS={"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}},
    RENKEI_BASE_URL=BASE_URL,
    RENKEI_OUTBOUND_DENY=deny_list_without_loopback(),
)
class ChannelsMatchTheOracle(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        stack = contextlib.ExitStack()
        cls.addClassCleanup(stack.close)
        cls.receivers = [stack.enter_context(WebhookReceiver()) for _ in range(MAX_ORGS)]
        cls.failed_tasks = []

        def record_failure(sender, task_result, **kwargs):
            if task_result.status == TaskResultStatus.FAILED:
                cls.failed_tasks.append(f"{task_result.task}: {task_result.errors[-1].traceback}")

        task_finished.connect(record_failure, weak=False, dispatch_uid="channel-properties")
        cls.addClassCleanup(task_finished.disconnect, dispatch_uid="channel-properties")

    # --- Building -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def phase(self, world: World, name: str, expected):
        """Run one step, deliver what it queued, and keep the mail it sent with who had to be told
        (`expected()`, evaluated after the step) and what everyone could see then."""
        self.failed_tasks.clear()
        sent = len(mail.outbox)
        with self.captureOnCommitCallbacks(execute=True):
            yield
        assert self.failed_tasks == []
        world.phases.append(
            Phase(
                name,
                mail.outbox[sent:],
                {(user, object_id) for user, object_id in expected() if user in world.with_email},
                {user.pk: world.seen_by(user) for user in world.people},
            )
        )

    def build(self, spec, *, webhooks: bool = False) -> World:
        mail.outbox = []
        cause = CauseCategory.objects.create(code="intentional", name_ja="意図的要因")
        community = build_community(spec)
        for user, (has_email, language) in zip(community.people, spec["contacts"], strict=False):
            user.email = f"{user.username}@example.jp" if has_email else ""
            user.language = language
            user.save()
        world = World(
            spec=spec,
            community=community,
            who={user.pk: viewer(user, community) for user in community.people},
            with_email={user.pk for user in community.people if user.email},
            memberships=set(
                Membership.objects.filter(organization__active=True).values_list("user_id", "organization_id")
            ),
            all_memberships=set(Membership.objects.values_list("user_id", "organization_id")),
        )
        if webhooks:
            self.register_webhooks(world)

        with self.phase(world, "submitted", lambda: self.told_of_submissions(world)):
            world.shared = submit_reports(spec, community, cause)
        for s in world.shared:
            self.sent_files(world, s, spec["reports"][s.marker]["attachments"])
        before = {id(s): (set(s.organizations), s.named | {s.report.reporter_id}) for s in world.shared}
        with self.phase(world, "forwarded", lambda: self.told_of_forwards(world, before)):
            event(f"forwards: {forward_reports(spec, community, world.shared)}")
        updated: dict[int, int] = {}
        with self.phase(world, "updated", lambda: self.told_of_updates(world, updated)):
            self.update_reports(world, updated)
        self.link_reports(world)
        with self.phase(world, "issued", lambda: self.told_of_advisories(world)):
            world.advisories = issue_advisories(spec, community, world.shared)
        self.acknowledge(world)
        world.copies = publish_copies(spec, community, world.shared)
        self.check_stored_files(world)

        event(f"reports: {len(world.shared)}, RED: {sum(s.report.tlp == Tlp.RED for s in world.shared)}")
        event(f"updates: {len(updated)}, links: {len(world.links)}")
        event(f"advisories: {len(world.advisories)}, copies: {len(world.copies)}")
        event(f"attachments: {Attachment.objects.count()}, messages: {len(mail.outbox)}")
        return world

    def register_webhooks(self, world: World) -> None:
        for receiver in self.receivers:
            receiver.received.clear()
        for index in sorted(world.spec["webhooks"]):
            organization = pick(world.community.orgs, index)
            if organization is None:
                continue
            receiver = self.receivers[index]
            _endpoint, receiver.secret = webhook_register(
                actor=None, organization=organization, url=receiver.url
            )
            world.endpoints[organization.pk] = receiver

    def update_reports(self, world: World, updated: dict[int, int]) -> None:
        """One update at most per report, by someone of the reporting organization; it keeps the
        report's markers."""
        for item in world.spec["updates"]:
            target = pick(world.shared, item["report"])
            if target is None or id(target) in updated:
                continue
            membership = candidate(
                item["author"], role__in=REPORTING_ROLES, organization=target.report.organization
            )
            if membership is None:
                continue
            report = target.report
            try:
                report_update(
                    author=membership.user,
                    report=report,
                    stage=VersionStage.UPDATE,
                    data=ReportInput(
                        title=marked(item["title"], f"報{target.marker}"),
                        narrative=marked(item["narrative"], f"述{target.marker}"),
                        sector=report.sector,
                        kind=report.kind,
                        detected_at=report.detected_at,
                        cause=report.cause,
                        tlp=report.tlp,
                        attachments=[
                            AttachmentInput(name, "application/octet-stream", data)
                            for name, data in item["attachments"]
                        ],
                    ),
                )
            except ValidationError as error:
                event(f"update refused: {error.messages[0]}")
                continue
            report.refresh_from_db()
            updated[id(target)] = membership.user_id
            self.sent_files(world, target, item["attachments"])

    def link_reports(self, world: World) -> None:
        for actor, first, second in world.spec["links"]:
            one, other = pick(world.shared, first), pick(world.shared, second)
            membership = candidate(actor, role__in=TRIAGE_ROLES, organization__type__in=TRIAGE_TYPES)
            if one is None or other is None or one is other or membership is None:
                continue
            try:
                report_link(actor=membership.user, report=one.report, other=other.report)
            except ValidationError as error:
                event(f"link refused: {error.messages[0]}")
                continue
            world.links.add(frozenset({one.report.pk, other.report.pk}))

    def acknowledge(self, world: World) -> None:
        advisories = list(world.advisories)
        for person, position in world.spec["acks"]:
            user, advisory = pick(world.people, person), pick(advisories, position)
            if user is None or advisory is None:
                continue
            try:
                acknowledgement = advisory_acknowledge(user=user, advisory=advisory)
            except ValidationError as error:
                event(f"acknowledgement refused: {error.messages[0]}")
                continue
            # Only for an organization of theirs the advisory addresses, never its issuer.
            to = world.advisories[advisory]
            assert acknowledgement.organization_id in world.who[user.pk].orgs
            assert acknowledgement.organization_id != to.issuer
            world.acknowledged.setdefault(str(advisory.pk), set()).add(acknowledgement.organization_id)

    def sent_files(self, world: World, target: SharedReport, files: list[tuple[str, bytes]]) -> None:
        for _name, data in files:
            digest = hashlib.sha256(data).hexdigest()
            world.contents[digest] = data
            world.files.setdefault(str(target.report.pk), Counter())[digest] += 1

    def check_stored_files(self, world: World) -> None:
        """Each report holds exactly the files sent with it (the same bytes stored once)."""
        stored: dict[str, Counter] = {}
        for report_id, blob in Attachment.objects.values_list("version__report_id", "blob_id"):
            stored.setdefault(str(report_id), Counter())[blob] += 1
        assert stored == {pk: files for pk, files in world.files.items() if files}

    # --- Who must be told --------------------------------------------------------------------------

    def told_of_submissions(self, world: World):
        for s in world.shared:
            for user in world.people:
                if user.pk != s.report.reporter_id and may_see_report(world.who[user.pk], s):
                    yield user.pk, str(s.report.pk)

    def told_of_forwards(self, world: World, before: dict):
        """The people a forward added: members of organizations new to the audience, and people
        named anew."""
        for s in world.shared:
            organizations, people = before[id(s)]
            reached = {user for user, org in world.memberships if org in s.organizations - organizations}
            reached |= s.named - people
            for user in world.people:
                if user.pk in reached and may_see_report(world.who[user.pk], s):
                    yield user.pk, str(s.report.pk)

    def told_of_updates(self, world: World, updated: dict[int, int]):
        for s in world.shared:
            author = updated.get(id(s))
            for user in world.people:
                if author not in (None, user.pk) and may_see_report(world.who[user.pk], s):
                    yield user.pk, str(s.report.pk)

    def told_of_advisories(self, world: World):
        """Everyone the audience reaches through an active organization, and everyone it names
        (whose organizations may all be inactive). The inbox row is kept under an organization, so
        a person named who belongs to none sees the advisory but is not notified."""
        for advisory, to in world.advisories.items():
            for user in world.people:
                if world.inbox_organization(user, to) is not None:
                    yield user.pk, str(advisory.pk)
                elif addressed(world.who[user.pk], to):
                    event("named without any organization: not notified")

    # --- The API ----------------------------------------------------------------------------------

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(channel_scenarios)
    def test_the_api_answers_exactly_what_the_rules_allow(self, spec):
        world = self.build(spec)
        for user in world.people:
            _token, secret = token_create(actor=user, user=user)
            client = Client(headers={"Authorization": f"Bearer {secret}"})
            self.check_api_reports(world, user, client)
            self.check_api_advisories(world, user, client)
            self.check_api_copies(world, user, client)

    def get_all(self, client: Client, url: str, seen: Seen) -> list[dict]:
        """Every item of a list endpoint, following `next` two at a time."""
        items, count, next_url = [], None, f"{url}?limit=2"
        while next_url:
            response = client.get(next_url)
            assert response.status_code == 200, response.content
            assert_tells_nothing_more(response.content.decode(), seen, url)
            page = response.json()
            count = page["count"] if count is None else count
            items += page["items"]
            next_url = page["next"]
        assert count == len(items)
        return items

    def missing(self, client: Client, url: str) -> tuple[int, str, dict]:
        response = client.get(url.format(uuid.uuid4()))
        return response.status_code, response["Content-Type"], response.json()

    def assert_missing(self, response, missing: tuple) -> None:
        """A forbidden object answers exactly like one that does not exist."""
        assert (response.status_code, response["Content-Type"], response.json()) == missing

    def check_api_reports(self, world: World, user: User, client: Client) -> None:
        seen = world.seen_by(user)
        visible = {str(s.report.pk): s for s in world.reports_for(user)}
        listed = self.get_all(client, "/api/v1/reports", seen)
        assert sorted(item["id"] for item in listed) == sorted(visible)
        for item in listed:
            assert item["organization"]["id"] == visible[item["id"]].report.organization_id
        missing = self.missing(client, "/api/v1/reports/{}")
        for s in world.shared:
            response = client.get(f"/api/v1/reports/{s.report.pk}")
            if str(s.report.pk) not in visible:
                self.assert_missing(response, missing)
                continue
            assert response.status_code == 200
            assert_tells_nothing_more(response.content.decode(), seen, "/api/v1/reports/{id}")
            detail = response.json()
            assert detail["title"] == s.report.title
            linked = {str(pk) for pair in world.links if s.report.pk in pair for pk in pair} - {
                str(s.report.pk)
            }
            assert sorted(detail["linked"]) == sorted(linked & set(visible))
            stored = Attachment.objects.filter(version__report=s.report)
            assert sorted(a["id"] for a in detail["attachments"]) == sorted(str(a.pk) for a in stored)

    def check_api_advisories(self, world: World, user: User, client: Client) -> None:
        seen = world.seen_by(user)
        who = world.who[user.pk]
        visible = {str(a.pk) for a in world.advisories_for(user)}
        visible_reports = {str(s.report.pk) for s in world.reports_for(user)}
        listed = {item["id"]: item for item in self.get_all(client, "/api/v1/advisories", seen)}
        assert sorted(listed) == sorted(visible)
        missing = self.missing(client, "/api/v1/advisories/{}")
        missing_acks = self.missing(client, "/api/v1/advisories/{}/acks")
        for advisory, to in world.advisories.items():
            response = client.get(f"/api/v1/advisories/{advisory.pk}")
            acks = client.get(f"/api/v1/advisories/{advisory.pk}/acks")
            if str(advisory.pk) not in visible:
                self.assert_missing(response, missing)
                self.assert_missing(acks, missing_acks)
                continue
            assert response.status_code == 200
            for detail in (response.json(), listed[str(advisory.pk)]):
                assert detail["title"] == advisory.title
                # The audience belongs to the issuer's chain; sources only as far as the reader sees.
                assert (detail["audience"] is not None) == in_issuer_chain(who, to)
                sources = {str(pk) for pk in to.source_reports}
                assert sorted(detail["source_reports"]) == sorted(sources & visible_reports)
            if not in_issuer_chain(who, to):
                self.assert_missing(acks, missing_acks)
                continue
            assert acks.status_code == 200
            table = acks.json()
            acknowledged = world.acknowledged.get(str(advisory.pk), set())
            assert {row["organization"]["id"] for row in table["organizations"]} == (
                world.reached_organizations(to) | acknowledged
            )
            assert table["acknowledged"] == len(acknowledged)

        inbox = self.get_all(client, "/api/v1/inbox", seen)
        expected = {
            str(advisory.pk): world.inbox_organization(user, to) for advisory, to in world.advisories.items()
        }
        expected = {pk: org for pk, org in expected.items() if org is not None}
        assert sorted(item["advisory"]["id"] for item in inbox) == sorted(expected)
        for item in inbox:
            advisory_id, organization = item["advisory"]["id"], item["organization"]["id"]
            assert organization == expected[advisory_id]
            assert item["acknowledged"] == (organization in world.acknowledged.get(advisory_id, set()))

    def check_api_copies(self, world: World, user: User, client: Client) -> None:
        seen = world.seen_by(user)
        visible = {str(c.pk) for c in world.copies_for(user)}
        visible_reports = {str(s.report.pk) for s in world.reports_for(user)}
        listed = {item["id"]: item for item in self.get_all(client, "/api/v1/anonymized-reports", seen)}
        assert sorted(listed) == sorted(visible)
        missing = self.missing(client, "/api/v1/anonymized-reports/{}")
        for copy, (_to, title, _narrative, source) in world.copies.items():
            response = client.get(f"/api/v1/anonymized-reports/{copy.pk}")
            if str(copy.pk) not in visible:
                self.assert_missing(response, missing)
                continue
            assert response.status_code == 200
            assert_tells_nothing_more(response.content.decode(), seen, "/api/v1/anonymized-reports/{id}")
            for document in (response.json(), listed[str(copy.pk)]):
                assert document["title"] == title
                # Never the source's organization or reporter; the source itself only to those who see it.
                assert document["organization"] is None
                source_id = str(source.report.pk)
                assert document["source"] == (source_id if source_id in visible_reports else None)
                identity = {source.report.organization.name_ja, source.report.reporter.username}
                assert not [s for s in strings_in(document) if s in identity or "組織" in s]

    # --- Attachments -----------------------------------------------------------------------------

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(channel_scenarios)
    def test_attachments_download_for_exactly_those_who_may_see_the_report(self, spec):
        world = self.build(spec)
        files = list(Attachment.objects.values_list("version__report_id", "pk", "blob_id").order_by("pk"))
        for user in world.people:
            _token, secret = token_create(actor=user, user=user)
            api = Client(headers={"Authorization": f"Bearer {secret}"})
            web = signed_in(user)
            visible = [s.report.pk for s in world.reports_for(user)]
            missing = self.missing(api, "/api/v1/reports/{}")
            for report_id, attachment_id, blob in files:
                urls = (
                    (api, f"/api/v1/reports/{report_id}/attachments/{attachment_id}"),
                    (web, f"/sharing/reports/{report_id}/attachments/{attachment_id}/"),
                )
                for client, url in urls:
                    response = client.get(url)
                    if report_id in visible:
                        assert response.status_code == 200, url
                        assert b"".join(response.streaming_content) == world.contents[blob]
                        assert response["Content-Type"] == "application/octet-stream"
                    elif client is api:
                        self.assert_missing(response, missing)
                    else:
                        assert response.status_code == 404
                # Under another report the user may see, the file is not there.
                other = next((pk for pk in visible if pk != report_id), None)
                if other is not None:
                    response = api.get(f"/api/v1/reports/{other}/attachments/{attachment_id}")
                    self.assert_missing(response, missing)
                    assert (
                        web.get(f"/sharing/reports/{other}/attachments/{attachment_id}/").status_code == 404
                    )

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(channel_scenarios)
    def test_advisory_attachments_download_for_exactly_those_who_may_see_the_advisory(self, spec):
        world = self.build(spec)
        files = list(AdvisoryAttachment.objects.select_related("advisory").order_by("pk"))
        for user in world.people:
            _token, secret = token_create(actor=user, user=user)
            api = Client(headers={"Authorization": f"Bearer {secret}"})
            web = signed_in(user)
            visible = {advisory.pk for advisory in world.advisories_for(user)}
            missing = self.missing(api, "/api/v1/advisories/{}")
            for attachment in files:
                advisory = attachment.advisory
                urls = (
                    (api, f"/api/v1/advisories/{advisory.pk}/attachments/{attachment.pk}"),
                    (web, reverse("sharing:advisory_attachment_download", args=[advisory.pk, attachment.pk])),
                )
                for client, url in urls:
                    response = client.get(url)
                    if advisory.pk in visible:
                        assert response.status_code == 200, url
                        expected = advisory_file(world.advisories[advisory].marker).content
                        assert b"".join(response.streaming_content) == expected
                        assert response["Content-Type"] == "application/octet-stream"
                    elif client is api:
                        self.assert_missing(response, missing)
                    else:
                        assert response.status_code == 404

    # --- Web pages -------------------------------------------------------------------------------

    @settings(max_examples=28, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(channel_scenarios)
    def test_the_web_pages_show_exactly_what_the_rules_allow(self, spec):
        world = self.build(spec)
        for user in world.people:
            client = signed_in(user)
            seen = world.seen_by(user)
            who = world.who[user.pk]
            reports = {str(s.report.pk): s for s in world.reports_for(user)}
            advisories = {str(a.pk) for a in world.advisories_for(user)}
            copies = {str(c.pk) for c in world.copies_for(user)}

            def page(url: str, status: int = 200, client=client, seen=seen) -> str:
                response = client.get(url)
                assert response.status_code == status, url
                content = response.content.decode()
                if status == 200:
                    assert_tells_nothing_more(content, seen, url)
                return content

            listing = page("/sharing/reports/")
            assert linked(listing, "reports") == set(reports)
            assert all(s.report.title in listing for s in reports.values())
            for s in world.shared:
                content = page(
                    f"/sharing/reports/{s.report.pk}/", 200 if str(s.report.pk) in reports else 404
                )
                if str(s.report.pk) in reports:
                    assert s.report.title in content

            assert linked(page("/sharing/advisories/"), "advisories") == advisories
            received = {str(a.pk) for a, to in world.advisories.items() if addressed(who, to)}
            received -= {str(a.pk) for a, to in world.advisories.items() if to.issuer in who.orgs}
            assert linked(page("/sharing/inbox/"), "advisories") == received
            for advisory, to in world.advisories.items():
                content = page(
                    f"/sharing/advisories/{advisory.pk}/", 200 if str(advisory.pk) in advisories else 404
                )
                if str(advisory.pk) in advisories:
                    assert linked(content, "reports") == {str(pk) for pk in to.source_reports} & set(reports)

            assert linked(page("/sharing/anonymized/"), "anonymized") == copies
            for copy, (_to, title, _narrative, source) in world.copies.items():
                content = page(f"/sharing/anonymized/{copy.pk}/", 200 if str(copy.pk) in copies else 404)
                if str(copy.pk) not in copies:
                    continue
                assert title in content
                source_visible = str(source.report.pk) in reports
                assert linked(content, "reports") == ({str(source.report.pk)} if source_visible else set())
                # The page header names the reader's own organizations; nothing else names the source.
                own = Membership.objects.filter(user=user, organization=source.report.organization).exists()
                assert own or source.report.organization.name_ja not in content

    # --- E-mail ----------------------------------------------------------------------------------

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(channel_scenarios)
    def test_mail_reaches_exactly_who_may_see_and_tells_nothing_more(self, spec):
        world = self.build(spec)
        by_address = {user.email: user.pk for user in world.people if user.email}
        reports = {str(s.report.pk): s for s in world.shared}
        advisories = {str(a.pk): (a, to) for a, to in world.advisories.items()}
        for phase in world.phases:
            told = []
            for message in phase.messages:
                assert len(message.to) == 1 and not message.cc and not message.bcc
                user = by_address[message.to[0]]
                content = f"{message.subject}\n{message.body}"
                about = set(re.findall(rf"{BASE_URL}/sharing/(?:reports|advisories)/({UUID})/", content))
                assert len(about) == 1, content
                object_id = about.pop()
                told.append((user, object_id))
                seen = phase.seen[user]
                assert object_id in seen.ids, f"{phase.name}: mail to u{user} about what they may not see"
                assert_tells_nothing_more(content, seen, f"{phase.name} mail")
                assert set(ORGANIZATION_NAME.findall(content)) <= seen.organization_names
                # The most restricted content stays behind the sign-in.
                if object_id in reports:
                    s = reports[object_id]
                    assert (f"【述{s.marker}】" in content) == (s.report.tlp in NARRATIVE_IN_MAIL)
                else:
                    advisory, to = advisories[object_id]
                    assert (f"【警文{to.marker}】" in content) == (advisory.tlp in NARRATIVE_IN_MAIL)
            assert len(told) == len(set(told)), f"{phase.name}: someone was told twice"
            assert set(told) == phase.expected, phase.name

    # --- Webhooks --------------------------------------------------------------------------------

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(channel_scenarios)
    def test_webhooks_carry_each_organization_only_what_it_may_see(self, spec):
        world = self.build(spec, webhooks=True)
        usernames = {user.username for user in world.people}
        for organization in world.community.orgs:
            receiver = world.endpoints.get(organization.pk)
            if receiver is None:
                continue
            expected = {
                str(a.pk): (a, to)
                for a, to in world.advisories.items()
                if organization_addressed(organization, to, world.community)
            }
            event(f"webhook deliveries: {len(receiver.received)}")
            assert sorted(hook.document["id"] for hook in receiver.received) == sorted(expected)
            for hook in receiver.received:
                assert hook.signature_valid and hook.answered == 204
                document = hook.document
                advisory, to = expected[document["id"]]
                assert set(document) == WEBHOOK_PAYLOAD_FIELDS
                assert document["type"] == "advisory"
                assert document["title"] == advisory.title
                assert document["issuer"] == advisory.issuer.name_ja
                # Nothing but the advisory's title and issuer: not its body, no report, no reporter.
                body = hook.body.decode()
                secrets = [f"【警文{to.marker}】"]
                for s in world.shared:
                    secrets += [str(s.report.pk), f"【報{s.marker}】", f"【述{s.marker}】"]
                for copy, (copy_to, *_rest) in world.copies.items():
                    secrets += [str(copy.pk), f"【匿{copy_to.marker}】", f"【匿述{copy_to.marker}】"]
                for other, other_to in world.advisories.items():
                    if other != advisory:
                        secrets += [str(other.pk), f"【警{other_to.marker}】"]
                assert [s for s in secrets if s in body] == []
                assert set(ORGANIZATION_NAME.findall(body)) == {advisory.issuer.name_ja}
                assert not usernames & set(strings_in(document))
