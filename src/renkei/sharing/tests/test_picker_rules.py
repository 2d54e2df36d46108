"""The web UI's audience pickers offer exactly what the services accept.

sharing/selectors.py copies the rules of `advisory_issue` (issuer scope, label ceiling) and of
`report_forward` (forwarding ceiling) to fill the pickers. Here every candidate a user may see is
tried against the service, alone and rolled back, and compared with what the picker offers: an
offered candidate the service refuses, or a refused one the picker offers, is drift.
"""

from collections.abc import Callable
from functools import partial

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from renkei.core.choices import Action
from renkei.directory.choices import Role
from renkei.directory.models import Membership, Organization, User
from renkei.directory.tests.factories import OrganizationFactory, member
from renkei.sharing import selectors, services
from renkei.sharing.choices import Tlp
from renkei.sharing.models import FORWARD_ROLES, Report
from renkei.sharing.tests.factories import advisory_input, report_for


def attempt(call: Callable):
    """What `call` returns, or the ValidationError it raises; its writes are rolled back either way."""
    try:
        with transaction.atomic():
            result = call()
            transaction.set_rollback(True)
            return result
    except ValidationError as error:
        return error


def describe(outcome) -> str:
    """The outcome for a mismatch message; for a refusal, the codes of the checks that said no."""
    if not isinstance(outcome, ValidationError):
        return "accepted"
    lists = outcome.error_dict.values() if hasattr(outcome, "error_dict") else [outcome.error_list]
    return f"refused ({', '.join(sorted({str(e.code) for errors in lists for e in errors}))})"


def name(candidate: Organization | User) -> str:
    if isinstance(candidate, Organization):
        return f"organization {candidate.pk} {candidate.name_en or candidate.name_ja}"
    return f"user {candidate.username}"


@pytest.fixture
def picker_community(sharing_community, queued):
    """`sharing_community` plus the cases a picker could get wrong: a closed bank under the bank
    CEPTOAR and its one remaining (active) employee, a deactivated account at bank B, a citizen who
    also works at the hospital, and a person who issues for both MHLW and the securities CEPTOAR.
    Notifications are stubbed (`queued`): only the decisions matter here."""
    c = sharing_community
    c.closed_bank = OrganizationFactory(
        name_en="Closed Bank", sectors=[c.finance], parent=c.bank_ceptoar, active=False
    )
    c.closed_bank_staff = member(c.closed_bank, Role.REPORTER, "closed_bank_staff")
    c.departed = member(c.bank_b, Role.REPORTER, "departed_bank_b_reporter")
    c.departed.is_active = False
    c.departed.save(update_fields=["is_active"])
    c.citizen_nurse = member(c.public, Role.REPORTER, "citizen_nurse")
    Membership.objects.create(user=c.citizen_nurse, organization=c.hospital, role=Role.REPORTER)
    c.dual_issuer = member(c.mhlw, Role.COORDINATOR, "mhlw_and_securities")
    Membership.objects.create(user=c.dual_issuer, organization=c.securities_ceptoar, role=Role.OFFICER)
    return c


def issuing_memberships() -> list[tuple[User, Organization]]:
    """Every (person, organization) pair an advisory may be issued as, as the service defines it."""
    memberships = Membership.objects.filter(
        role__in=FORWARD_ROLES,
        organization__type__in=services.ISSUER_TYPES,
        organization__active=True,
        user__is_active=True,
    ).select_related("user", "organization")
    return list(dict.fromkeys((m.user, m.organization) for m in memberships))


def test_advisory_pickers_offer_exactly_what_advisory_issue_accepts(picker_community):
    pairs = issuing_memberships()
    # Every issuer type and the person with two issuing organizations are among them.
    assert {organization.type for _user, organization in pairs} == set(services.ISSUER_TYPES)
    assert sum(user == picker_community.dual_issuer for user, _organization in pairs) == 2

    mismatches = []
    for user, issuer in pairs:
        for kind, selector, candidates in (
            ("organizations", selectors.advisory_organizations, Organization.objects.restrict(user)),
            ("people", selectors.advisory_people, User.objects.restrict(user)),
        ):
            accepted_by_some_label = set()
            for tlp in Tlp.values:
                offered = set(selector(user, issuers=[issuer], tlp=tlp))
                for candidate in offered | set(candidates):
                    outcome = attempt(
                        partial(
                            services.advisory_issue,
                            issuer=user,
                            organization=issuer,
                            data=advisory_input(tlp=tlp, **{kind: [candidate]}),
                        )
                    )
                    accepted = not isinstance(outcome, ValidationError)
                    if accepted:
                        accepted_by_some_label.add(candidate)
                    if accepted != (candidate in offered):
                        mismatches.append(
                            f"{user.username} as {name(issuer)}, {tlp}: {name(candidate)} "
                            f"{'offered' if candidate in offered else 'not offered'}, {describe(outcome)}"
                        )
            # Without a label the form takes anything some label allows, and leaves the label to
            # the service.
            unlabelled = set(selector(user, issuers=[issuer]))
            for candidate in unlabelled ^ accepted_by_some_label:
                mismatches.append(
                    f"{user.username} as {name(issuer)}, no label: {name(candidate)} "
                    f"{'offered' if candidate in unlabelled else 'not offered'}, "
                    f"{'accepted' if candidate in accepted_by_some_label else 'refused'} under every label"
                )
    assert not mismatches, "\n".join(mismatches)


@pytest.fixture
def reports_of_every_label(picker_community) -> list[Report]:
    """A report from bank A under each label, shared with its CEPTOAR; the GREEN one already
    forwarded to the hospital and the AMBER one to bank B, so forwarded holders forward too."""
    c = picker_community
    reports = {
        tlp: report_for(c.bank_a_reporter, c.bank_a, tlp=tlp, share_with_ceptoar=True) for tlp in Tlp.values
    }
    services.report_forward(actor=c.nisc_coordinator, report=reports[Tlp.GREEN], organizations=[c.hospital])
    services.report_forward(actor=c.fsa_coordinator, report=reports[Tlp.AMBER], organizations=[c.bank_b])
    return list(reports.values())


def test_forward_pickers_offer_exactly_what_report_forward_accepts(picker_community, reports_of_every_label):
    mismatches = []
    forwarders = {tlp: set() for tlp in Tlp.values}
    for report in reports_of_every_label:
        for user in User.objects.filter(is_active=True):
            # Anyone else gets a 404 from the forwarding page and its pickers.
            if not Report.objects.restrict(user, Action.FORWARD).filter(pk=report.pk).exists():
                continue
            # The page shows the forward form only to those who may forward (for TLP:RED, the source).
            may_forward = selectors.may_forward(user, report)
            if may_forward:
                forwarders[report.tlp].add(user.username)
            for kind, selector, candidates, audience in (
                (
                    "organizations",
                    selectors.forward_organizations,
                    Organization.objects.restrict(user),
                    Organization.objects.filter(report_grants__report=report),
                ),
                (
                    "users",
                    selectors.forward_people,
                    User.objects.restrict(user),
                    User.objects.filter(report_grants__report=report),
                ),
            ):
                offered = set(selector(user, report)) if may_forward else set()
                already = set(audience)
                for candidate in offered | set(candidates):
                    outcome = attempt(
                        partial(services.report_forward, actor=user, report=report, **{kind: [candidate]})
                    )
                    if isinstance(outcome, ValidationError):
                        result = "refused"
                    else:
                        result = "added" if outcome else "unchanged"
                    # The picker leaves out who already holds the report: forwarding to them
                    # again may be accepted, adding nothing.
                    if candidate in offered:
                        expected = {"added"}
                    else:
                        expected = {"refused", "unchanged"} if candidate in already else {"refused"}
                    if result not in expected:
                        mismatches.append(
                            f"{user.username}, {report.tlp} report: {name(candidate)} "
                            f"{'offered' if candidate in offered else 'not offered'}"
                            f"{' (already in the audience)' if candidate in already else ''}, "
                            f"{describe(outcome) if result == 'refused' else result}"
                        )
    assert not mismatches, "\n".join(mismatches)
    # Several people forward each label; TLP:RED only the source, not the chain that holds it.
    assert forwarders.pop(Tlp.RED) == {picker_community.bank_a_officer.username}
    assert all(len(people) >= 3 for people in forwarders.values())
