"""The "seen elsewhere" section of a report's page."""

from django.urls import reverse

from renkei.sharing.choices import Tlp
from renkei.sharing.tests.factories import report_for
from renkei.sharing.tests.test_views import signed_in

IP = ("ipv4-addr", "203.0.113.9")


def test_the_report_page_links_what_the_reader_may_see_and_counts_the_rest_for_the_centre(community):
    c = community
    mine = report_for(c.bank_a_reporter, c.bank_a, observables=[IP])
    theirs = report_for(c.bank_b_reporter, c.bank_b, observables=[IP], title="もみじ銀行の事案")
    red = report_for(
        c.bank_b_reporter, c.bank_b, observables=[IP], tlp=Tlp.RED, recipients=[c.fsa_coordinator]
    )
    page = reverse("sharing:report_detail", args=[mine.pk])

    centre = signed_in(c.nisc_coordinator).get(page).content.decode()
    assert "Seen elsewhere" in centre
    assert reverse("sharing:report_detail", args=[theirs.pk]) in centre
    assert "1 more elsewhere (not shown)" in centre
    assert str(red.pk) not in centre

    reporter = signed_in(c.bank_a_reporter).get(page).content.decode()
    assert "Seen elsewhere" in reporter
    assert "None of these observables was found anywhere else you may see." in reporter
    for hidden in (str(theirs.pk), str(red.pk), "もみじ銀行の事案", "more elsewhere"):
        assert hidden not in reporter


def test_a_report_without_observables_has_no_section(community):
    report = report_for(community.bank_a_reporter, community.bank_a)
    response = signed_in(community.bank_a_reporter).get(reverse("sharing:report_detail", args=[report.pk]))
    assert response.status_code == 200
    assert "Seen elsewhere" not in response.content.decode()
