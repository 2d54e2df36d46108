"""Reports, advisories and anonymized copies: what every user sees equals what the rules allow —
`restrict`, search, the dashboard's figures and its CSV download, checked against the plain-Python
oracle of access_oracle.py on random communities (test_channel_properties.py does the same for the
API, downloads, web pages, e-mail and webhooks).
"""

import csv
import io
from unittest import mock

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from renkei.core.access import who_may
from renkei.core.choices import Action
from renkei.directory.choices import Role
from renkei.directory.models import Sector, User
from renkei.sharing.choices import Tlp
from renkei.sharing.models import Advisory, AnonymizedReport, CauseCategory, Report
from renkei.sharing.search import search_anonymized, search_reports
from renkei.sharing.selectors import (
    DASHBOARD_ORGANIZATION_TYPES,
    reports_by_month_and_sector,
    unacknowledged_advisories,
)
from renkei.sharing.tests.access_oracle import (
    QUERIES,
    addressed,
    build_community,
    forward_reports,
    issue_advisories,
    matches,
    may_see_advisory,
    may_see_report,
    publish_copies,
    scenarios,
    signed_in,
    submit_reports,
    viewer,
)


def exported_report_ids(user: User) -> set[str] | None:
    """The report ids in the dashboard's CSV download, or None when the download is a 404."""
    response = signed_in(user).get("/dashboard/export/reports.csv")
    if response.status_code == 404:
        return None
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    return {row[0] for row in rows[1:]}


class SharingAccessMatchesTheOracle(TestCase):
    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(scenarios(), st.sampled_from(QUERIES))
    def test_every_user_sees_exactly_what_the_rules_allow(self, spec, query):
        cause = CauseCategory.objects.create(code="intentional", name_ja="意図的要因")
        community = build_community(spec)
        shared = submit_reports(spec, community, cause)
        forwarded = forward_reports(spec, community, shared)
        advisories = issue_advisories(spec, community)
        copies = publish_copies(spec, community, shared)
        # Shown by --hypothesis-show-statistics: how much of each kind the services accepted.
        event(f"reports: {len(shared)}, RED: {sum(s.report.tlp == Tlp.RED for s in shared)}")
        event(f"forwards: {forwarded}")
        event(f"advisories: {len(advisories)}, copies: {len(copies)}")

        for user in community.people:
            user = User.objects.get(pk=user.pk)
            who = viewer(user, community)
            visible_reports = {s.report for s in shared if may_see_report(who, s)}
            restricted = Report.objects.restrict(user)
            assert set(restricted) == visible_reports
            assert restricted.count() == len(visible_reports)  # no row twice

            visible_advisories = {a for a, to in advisories.items() if may_see_advisory(who, to)}
            assert set(Advisory.objects.restrict(user)) == visible_advisories
            assert Advisory.objects.restrict(user).count() == len(visible_advisories)

            visible_copies = {c for c, (to, *_content) in copies.items() if addressed(who, to)}
            assert set(AnonymizedReport.objects.restrict(user)) == visible_copies

            # Search: exactly the visible rows whose text matches.
            assert set(search_reports(restricted, query)) == {
                r for r in visible_reports if matches(query, r.title, r.narrative)
            }
            assert set(search_anonymized(AnonymizedReport.objects.restrict(user), query)) == {
                c for c in visible_copies if matches(query, copies[c][1], copies[c][2])
            }

            # The dashboard: its figures count, and its download lists, exactly the visible reports.
            per_sector = {}
            for report in visible_reports:
                code = Sector.objects.get(pk=report.sector_id).code
                per_sector[code] = per_sector.get(code, 0) + 1
            trend = reports_by_month_and_sector(restricted)
            assert {s.code: s.total for s in trend.series} == per_sector
            exported = exported_report_ids(user)
            if who.types & set(DASHBOARD_ORGANIZATION_TYPES):
                assert exported == {str(r.pk) for r in visible_reports}
            else:
                assert exported is None
            issuing = {
                org for org, role in who.roles if role in (Role.OFFICER, Role.COORDINATOR, Role.ANALYST)
            }
            assert set(unacknowledged_advisories(user)) <= {
                a for a in visible_advisories if a.ack_required and a.issuer_id in issuing
            }
            assert set(Advisory.objects.restrict(user, Action.CHANGE)) <= visible_advisories

        # Many people at once, as notifications ask: the same answers, whatever the chunk boundaries.
        people = list(User.objects.filter(pk__in=[user.pk for user in community.people]).order_by("?"))
        viewers = {user: viewer(user, community) for user in people}
        with mock.patch("renkei.core.access.WHO_MAY_CHUNK", 3):
            for submitted in shared:
                assert who_may(submitted.report, people) == [
                    user for user in people if may_see_report(viewers[user], submitted)
                ]
            for advisory, to in advisories.items():
                assert who_may(advisory, people) == [
                    user for user in people if may_see_advisory(viewers[user], to)
                ]
