"""Correlation through the services that create reports, advisories and copies, and what each
reader is told about the matches."""

import importlib

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError

from renkei.correlation.choices import SourceKind, Suppression
from renkei.correlation.models import CorrelationKey, Sighting
from renkei.correlation.services import correlate, index_sightings, seen_elsewhere
from renkei.sharing import services
from renkei.sharing.choices import Tlp
from renkei.sharing.services import ObservableInput
from renkei.sharing.tests.factories import advisory_for, anonymized_copy_for, report_for, report_input

IP = ("ipv4-addr", "203.0.113.9")


def report_source(report) -> tuple[str, str]:
    return (SourceKind.REPORT, str(report.pk))


def seen_for(user, report, value: str):
    """What `user` is told on `report`'s page about its observable `value`."""
    (observable,) = [
        o for o in seen_elsewhere(SourceKind.REPORT, report.pk, user).observables if o.value == value
    ]
    return observable


def test_the_same_value_in_two_organizations_reports_correlates(community):
    c = community
    mine = report_for(c.bank_a_reporter, c.bank_a, observables=[("domain-name", "Evil.Example.com")])
    theirs = report_for(c.bank_b_reporter, c.bank_b, observables=[("domain-name", "evil.example.com.")])
    assert correlate("domain-name", "EVIL.example.com") == sorted(
        [report_source(mine), report_source(theirs)]
    )
    assert correlate("domain-name", "evil.example.com", exclude=[report_source(mine)]) == [
        report_source(theirs)
    ]
    assert correlate("domain-name", "other.example.com") == []


def test_readers_get_links_only_to_what_they_may_see_and_counts_only_at_the_national_centre(community):
    c = community
    mine = report_for(c.bank_a_reporter, c.bank_a, observables=[IP])
    theirs = report_for(c.bank_b_reporter, c.bank_b, observables=[IP], title="もみじ銀行の事案")
    # Named people only: the national centre cannot open it.
    red = report_for(
        c.bank_b_reporter, c.bank_b, observables=[IP], tlp=Tlp.RED, recipients=[c.fsa_coordinator]
    )

    centre = seen_for(c.nisc_coordinator, mine, IP[1])
    assert [(link.id, link.title, link.url) for link in centre.links] == [
        (str(theirs.pk), "もみじ銀行の事案", f"/sharing/reports/{theirs.pk}/")
    ]
    assert centre.hidden_count == 1

    # Bank A may see neither of bank B's reports, and is not told they exist.
    reporter = seen_for(c.bank_a_reporter, mine, IP[1])
    assert (reporter.links, reporter.hidden_count, reporter.anything) == ([], None, False)

    # The FSA was named on the red report and receives both through the chain: two links, no count.
    ministry = seen_for(c.fsa_coordinator, mine, IP[1])
    assert {link.id for link in ministry.links} == {str(theirs.pk), str(red.pk)}
    assert ministry.hidden_count is None


def test_an_advisory_range_and_a_reported_address_inside_it_correlate_both_ways(community):
    c = community
    report = report_for(c.bank_a_reporter, c.bank_a, observables=[IP])
    advisory = advisory_for(
        c.nisc_coordinator,
        c.nisc,
        sectors=[c.finance],
        observables=[ObservableInput("ipv4-addr", "203.0.113.0/24")],
    )
    seen = seen_for(c.bank_a_reporter, report, IP[1])
    assert [(link.kind, link.id, link.values) for link in seen.links] == [
        (SourceKind.ADVISORY, str(advisory.pk), ("203.0.113.0/24",))
    ]
    (from_advisory,) = seen_elsewhere(SourceKind.ADVISORY, advisory.pk, c.nisc_coordinator).observables
    assert [(link.id, link.values) for link in from_advisory.links] == [(str(report.pk), (IP[1],))]
    assert correlate("ipv4-addr", "203.0.113.200") == [(SourceKind.ADVISORY, str(advisory.pk))]
    assert correlate("ipv4-addr", "203.0.114.1") == []


def test_ranges_match_nested_ranges_and_ipv6(db):
    index_sightings(SourceKind.STIX, "wide", [("ipv4-addr", "198.51.0.0/16"), ("ipv6-addr", "2001:db8::/32")])
    index_sightings(
        SourceKind.STIX, "narrow", [("ipv4-addr", "198.51.100.0/24"), ("ipv6-addr", "2001:db8:5::1")]
    )
    index_sightings(SourceKind.STIX, "beside", [("ipv4-addr", "198.52.0.0/16"), ("ipv6-addr", "2001:db9::1")])
    assert correlate("ipv4-addr", "198.51.100.0/25") == [
        (SourceKind.STIX, "narrow"),
        (SourceKind.STIX, "wide"),
    ]
    assert correlate("ipv4-addr", "198.51.0.0/16") == [(SourceKind.STIX, "narrow"), (SourceKind.STIX, "wide")]
    assert correlate("ipv6-addr", "2001:DB8:5:0::1") == [
        (SourceKind.STIX, "narrow"),
        (SourceKind.STIX, "wide"),
    ]
    assert correlate("ipv4-addr", "198.50.255.255") == []


def test_values_held_by_more_sources_than_the_limit_stop_correlating(community, settings):
    c = community
    settings.RENKEI_CORRELATION_MAX_SIGHTINGS = 2
    first = report_for(c.bank_a_reporter, c.bank_a, observables=[IP])
    report_for(c.bank_b_reporter, c.bank_b, observables=[IP])
    assert len(correlate(*IP)) == 2
    report_for(c.hospital_reporter, c.hospital, observables=[IP])
    assert correlate(*IP) == []
    assert correlate("ipv4-addr", "203.0.113.0/24") == []  # the address no longer correlates inside ranges
    assert CorrelationKey.objects.get().source_count == 3  # still counted
    centre = seen_for(c.nisc_coordinator, first, IP[1])
    assert (centre.suppressed, centre.links, centre.hidden_count) == (Suppression.TOO_COMMON, [], 0)
    # Anyone else would learn how often others hold the value: they are told nothing.
    assert not seen_for(c.bank_a_reporter, first, IP[1]).anything


def test_a_range_holding_more_sightings_than_the_limit_stops_correlating(db, settings):
    settings.RENKEI_CORRELATION_MAX_SIGHTINGS = 2
    for number in range(3):
        index_sightings(SourceKind.STIX, f"bundle-{number}", [("ipv4-addr", f"198.51.100.{number}")])
    assert correlate("ipv4-addr", "198.51.100.0/24") == []
    assert correlate("ipv4-addr", "198.51.100.0/31") == [
        (SourceKind.STIX, "bundle-0"),
        (SourceKind.STIX, "bundle-1"),
    ]


def test_values_on_the_warning_list_are_stored_but_never_correlate(community):
    c = community
    mine = report_for(
        c.bank_a_reporter, c.bank_a, observables=[("ipv4-addr", "8.8.8.8"), ("domain-name", "google.com")]
    )
    report_for(
        c.bank_b_reporter, c.bank_b, observables=[("ipv4-addr", "8.8.8.8"), ("domain-name", "google.com")]
    )
    index_sightings(SourceKind.STIX, "private", [("ipv4-addr", "10.0.0.0/8"), ("ipv4-addr", "10.1.2.3")])
    assert Sighting.objects.count() == 6
    assert correlate("ipv4-addr", "8.8.8.8") == correlate("domain-name", "google.com") == []
    assert correlate("ipv4-addr", "10.1.2.3") == []
    seen = seen_for(c.nisc_coordinator, mine, "8.8.8.8")
    assert (seen.suppressed, seen.links) == (Suppression.WARNING_LIST, [])
    assert seen_for(c.bank_a_reporter, mine, "google.com").suppressed == Suppression.WARNING_LIST


def test_indexing_again_adds_nothing_and_an_update_adds_its_new_observables(community):
    c = community
    report = report_for(c.bank_a_reporter, c.bank_a, observables=[IP])
    index_sightings(SourceKind.REPORT, report.pk, [IP, ("ipv4-addr", "203.0.113.9/32")])
    assert (Sighting.objects.count(), CorrelationKey.objects.get().source_count) == (1, 1)
    services.report_update(
        author=c.bank_a_reporter,
        report=report,
        data=report_input(c.bank_a, observables=[IP, ("domain-name", "evil.example.com")]),
    )
    assert sorted(Sighting.objects.filter(source_id=str(report.pk)).values_list("value", flat=True)) == [
        IP[1],
        "evil.example.com",
    ]
    assert sorted(CorrelationKey.objects.values_list("source_count", flat=True)) == [1, 1]


def test_storage_grows_with_observables_not_with_matching_pairs(db):
    values = [("ipv4-addr", f"203.0.113.{n}") for n in range(5)] + [("ipv4-addr", "203.0.113.0/24")]
    for number in range(20):
        index_sightings(SourceKind.STIX, f"bundle-{number}", values)
    # 20 sources × 6 values all match one another (thousands of pairs), yet one row each is kept.
    assert Sighting.objects.count() == 20 * 6
    assert CorrelationKey.objects.count() == 6
    assert set(CorrelationKey.objects.values_list("source_count", flat=True)) == {20}


def test_a_reports_own_anonymized_copy_is_not_elsewhere(community):
    c = community
    report = report_for(c.bank_a_reporter, c.bank_a, observables=[IP], anonymized_copy_consent=True)
    copy = anonymized_copy_for(c.nisc_coordinator, report, observables=[IP])
    assert correlate(*IP) == sorted([(SourceKind.ANONYMIZED, str(copy.pk)), report_source(report)])
    assert not seen_for(c.nisc_coordinator, report, IP[1]).anything
    (on_copy,) = seen_elsewhere(SourceKind.ANONYMIZED, copy.pk, c.nisc_coordinator).observables
    assert not on_copy.anything
    other = report_for(c.bank_b_reporter, c.bank_b, observables=[IP])
    assert [link.kind for link in seen_for(c.nisc_coordinator, other, IP[1]).links] == [
        SourceKind.ANONYMIZED,
        SourceKind.REPORT,
    ]


def test_invalid_values_are_refused_by_correlate_and_skipped_by_indexing(db):
    with pytest.raises(ValidationError):
        correlate("ipv4-addr", "not an address")
    index_sightings(SourceKind.STIX, "odd", [("ipv4-addr", "999.1.1.1"), ("x-unknown", "value"), IP])
    assert list(Sighting.objects.values_list("value", flat=True)) == [IP[1]]


def test_the_migration_indexes_what_was_stored_before(community):
    c = community
    first = report_for(c.bank_a_reporter, c.bank_a, observables=[IP, ("domain-name", "evil.example.com")])
    report_for(c.bank_b_reporter, c.bank_b, observables=[IP])
    advisory_for(
        c.nisc_coordinator,
        c.nisc,
        sectors=[c.finance],
        observables=[ObservableInput("ipv4-addr", "203.0.113.0/24")],
    )
    before = set(Sighting.objects.values_list("source_kind", "source_id", "key", "value"))
    counts = set(CorrelationKey.objects.values_list("key", "ip_low", "ip_high", "source_count"))
    Sighting.objects.all().delete()
    CorrelationKey.objects.all().delete()

    migration = importlib.import_module("renkei.correlation.migrations.0002_index_existing_observables")
    migration.index_existing_observables(apps, None)

    assert set(Sighting.objects.values_list("source_kind", "source_id", "key", "value")) == before
    assert set(CorrelationKey.objects.values_list("key", "ip_low", "ip_high", "source_count")) == counts
    assert len(correlate(*IP, exclude=[report_source(first)])) == 2


def test_imported_objects_the_reader_cannot_open_are_counted_for_the_centre_only(community):
    c = community
    report = report_for(c.bank_a_reporter, c.bank_a, observables=[IP])
    index_sightings(SourceKind.STIX, "12345", [IP])  # no such imported object, or one in a closed collection
    index_sightings(SourceKind.STIX, "urn:elsewhere", [IP])
    assert seen_for(c.nisc_coordinator, report, IP[1]).hidden_count == 2
    assert not seen_for(c.bank_a_reporter, report, IP[1]).anything
