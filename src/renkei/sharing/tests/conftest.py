"""Fixtures for sharing tests, on top of the top-level `reference_data` and `community`."""

import pytest

from renkei.directory.choices import OrganizationType, Role
from renkei.directory.models import Organization
from renkei.directory.tests.factories import OrganizationFactory, member
from renkei.sharing import services
from renkei.sharing.models import CauseCategory
from renkei.sharing.tests.factories import EVERY_OBSERVABLE_TYPE, bearer, report_for, report_input


@pytest.fixture
def causes(reference_data) -> dict[str, CauseCategory]:
    """The reference cause taxonomy by code."""
    return {c.code: c for c in CauseCategory.objects.all()}


@pytest.fixture
def submitted_report(community):
    """An AMBER report from bank A (finance), not shared with the CEPTOAR."""
    return report_for(community.bank_a_reporter, community.bank_a)


@pytest.fixture
def consenting_report(community):
    """An AMBER report from bank A whose reporter consents to an anonymized copy."""
    return report_for(community.bank_a_reporter, community.bank_a, anonymized_copy_consent=True)


@pytest.fixture
def sharing_community(community):
    """`community` plus the people the sharing rules single out: bank A's officer, an FSA analyst,
    the securities CEPTOAR's officer (another CEPTOAR in finance), an international partner and a
    member of the public."""
    c = community
    c.securities_ceptoar = Organization.objects.get(name_ja="証券セプター")
    c.partner = OrganizationFactory(type=OrganizationType.INTERNATIONAL_PARTNER, name_en="Partner CERT")
    c.public = OrganizationFactory(type=OrganizationType.PUBLIC, name_en="Citizen")
    c.bank_a_officer = member(c.bank_a, Role.OFFICER, "bank_a_officer")
    c.bank_b_officer = member(c.bank_b, Role.OFFICER, "bank_b_officer")
    c.fsa_analyst = member(c.fsa, Role.ANALYST, "fsa_analyst")
    c.nisc_analyst = member(c.nisc, Role.ANALYST, "nisc_analyst")
    c.securities_officer = member(c.securities_ceptoar, Role.OFFICER, "securities_ceptoar_officer")
    c.partner_analyst = member(c.partner, Role.ANALYST, "partner_analyst")
    c.citizen = member(c.public, Role.REPORTER, "citizen")
    return c


class TaskRecorder:
    """Stands in for a django-tasks task and remembers what was enqueued."""

    def __init__(self):
        self.calls = []

    def enqueue(self, **kwargs):
        self.calls.append(kwargs)


@pytest.fixture
def queued(monkeypatch):
    """What services queue on commit, by task name (`report_follow_up`, `advisory_fan_out`)."""
    recorders = {"report_follow_up": TaskRecorder(), "advisory_fan_out": TaskRecorder()}
    for name, recorder in recorders.items():
        monkeypatch.setattr(f"renkei.sharing.services.{name}", recorder)
    return recorders


@pytest.fixture
def headers(community):
    """Bearer headers per user of the community, created on first use."""
    cache: dict = {}

    def of(user):
        if user.pk not in cache:
            cache[user.pk] = bearer(user)
        return cache[user.pk]

    return of


@pytest.fixture
def report_with_every_observable_type(community):
    """A report from bank A with every type of observable, the last one added in an update."""
    report = report_for(community.bank_a_reporter, observables=EVERY_OBSERVABLE_TYPE[:-1])
    services.report_update(
        author=community.bank_a_reporter,
        report=report,
        data=report_input(community.bank_a, observables=[EVERY_OBSERVABLE_TYPE[-1]]),
        stage="update",
    )
    return report
