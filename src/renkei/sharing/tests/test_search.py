"""Search and filters: Japanese substrings, short terms, hostile input, and never beyond `restrict`."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from renkei.sharing.choices import ReportStatus, Tlp
from renkei.sharing.models import AnonymizedReport, Report
from renkei.sharing.search import (
    MAX_TERMS,
    filter_anonymized,
    filter_reports,
    fts5_query,
    search_anonymized,
    search_reports,
    search_terms,
)
from renkei.sharing.tests.factories import cause, report_for

pytestmark = pytest.mark.django_db

HOSTILE_QUERIES = [
    '"',
    '""',
    '"不正',
    "a OR b",
    "NOT 不正",
    "title:不正",
    "不正*",
    "(不正",
    "NEAR(不正 アクセス)",
    "^不正",
    "'; DROP TABLE sharing_report; --",
    "%",
    "_",
    "\\",
    "不正\x00アクセス",
    "{title narrative}: x",
    "-不正",
    "+",
    "AND",
    '"""',
    'a" OR "b',
    'NEAR("不正" "アクセス", 2)',
    "不正アクセス*",
    "* OR *",
]
# Letters that occur in the reports, query syntax of FTS5 and LIKE, and whitespace.
QUERY_ALPHABET = st.sampled_from(list("不正アクセス停電障害落rANSOMWAREnotabc\"*^():+-.%_\\' 　\t"))


@pytest.fixture
def reports(community):
    """Reports from bank A (finance) and the hospital (medical) with distinctive text."""
    intrusion = report_for(
        community.bank_a_reporter,
        title="インターネットバンキング障害",
        narrative="ログイン基盤への不正アクセスを検知した。100%の利用者に影響。",
    )
    blackout = report_for(
        community.hospital_reporter,
        title="停電による電子カルテ停止",
        narrative="落雷で停電が発生し、電子カルテが 3 時間利用できなかった。",
        cause="environmental.disaster",
    )
    ransomware = report_for(
        community.bank_b_reporter,
        title="Ransomware at branch office",
        narrative="Files encrypted by LockBit; not_a_wildcard in the note.",
        cause="intentional.malware",
        tlp=Tlp.GREEN,
    )
    return {"intrusion": intrusion, "blackout": blackout, "ransomware": ransomware}


def found(queryset, q) -> set:
    return set(search_reports(queryset, q))


def test_japanese_substring_in_narrative_is_found(community, reports):
    everything = Report.objects.all()
    assert found(everything, "不正アクセス") == {reports["intrusion"]}
    assert found(everything, "電子カルテ") == {reports["blackout"]}


def test_one_and_two_character_queries_still_work(community, reports):
    everything = Report.objects.all()
    assert found(everything, "停電") == {reports["blackout"]}
    assert found(everything, "落") == {reports["blackout"]}
    assert found(everything, "障害") == {reports["intrusion"]}


def test_every_term_must_appear_in_title_or_narrative(community, reports):
    everything = Report.objects.all()
    # One term in the title, one in the narrative; the ideographic space separates terms too.
    assert found(everything, "バンキング　不正アクセス") == {reports["intrusion"]}
    assert found(everything, "停電 不正アクセス") == set()
    assert found(everything, "カルテ 停電") == {reports["blackout"]}


def test_latin_text_is_case_insensitive(community, reports):
    everything = Report.objects.all()
    assert found(everything, "lockbit") == {reports["ransomware"]}
    assert found(everything, "RANSOMWARE") == {reports["ransomware"]}


def test_like_wildcards_are_literal(community, reports):
    everything = Report.objects.all()
    assert found(everything, "%") == {reports["intrusion"]}
    assert found(everything, "not_a") == {reports["ransomware"]}
    assert found(everything, "not%a") == set()


def test_empty_query_narrows_nothing(community, reports):
    everything = Report.objects.all()
    assert found(everything, "") == set(reports.values())
    assert found(everything, "   ") == set(reports.values())
    assert found(everything, None) == set(reports.values())


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
def test_query_syntax_in_input_is_plain_text(community, reports, query):
    result = found(Report.objects.all(), query)
    # Whatever the input, the answer is exactly the rows that contain every term literally.
    terms = search_terms(query)
    expected = {
        report
        for report in reports.values()
        if all(
            term.casefold() in report.title.casefold() or term.casefold() in report.narrative.casefold()
            for term in terms
        )
    }
    assert result == expected
    assert Report.objects.count() == 3


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(QUERY_ALPHABET, max_size=12))
def test_any_query_finds_exactly_the_rows_containing_every_term(community, reports, query):
    expected = {
        report
        for report in reports.values()
        if all(
            term.casefold() in report.title.casefold() or term.casefold() in report.narrative.casefold()
            for term in search_terms(query)
        )
    }
    assert found(Report.objects.all(), query) == expected


def test_fts5_query_quotes_every_term():
    assert fts5_query(['a"b', "NEAR(x"]) == '"a""b" AND "NEAR(x"'


def test_terms_are_bounded_and_control_characters_dropped():
    assert search_terms("x\x00y z") == ["xy", "z"]
    assert len(search_terms(" ".join(f"t{i}" for i in range(50)))) == MAX_TERMS
    assert search_terms("a a b") == ["a", "b"]


def test_search_never_returns_what_restrict_excludes(community, reports):
    # The hospital's reporter may not see the banks' reports, whatever they search for.
    visible = Report.objects.restrict(community.hospital_reporter)
    assert found(visible, "不正アクセス") == set()
    assert found(visible, "停電") == {reports["blackout"]}
    assert found(visible, "lockbit") == set()
    # Bank B sees its own report only; bank A's AMBER report stays hidden.
    assert found(Report.objects.restrict(community.bank_b_reporter), "不正") == set()
    # The FSA sees finance, not medical.
    fsa = Report.objects.restrict(community.fsa_coordinator)
    assert found(fsa, "不正アクセス") == {reports["intrusion"]}
    assert found(fsa, "停電") == set()


def test_search_result_stays_a_queryset_that_can_be_narrowed(community, reports):
    result = search_reports(Report.objects.restrict(community.nisc_coordinator), "カルテ")
    assert result.filter(sector__code="medical").count() == 1
    assert result.filter(sector__code="finance").count() == 0


def test_index_follows_updates_and_deletes(community, reports):
    intrusion = reports["intrusion"]
    Report.objects.filter(pk=intrusion.pk).update(narrative="原因はサーバーの設定誤りだった。")
    assert found(Report.objects.all(), "不正アクセス") == set()
    assert found(Report.objects.all(), "設定誤り") == {intrusion}
    # The title did not change, so it is still found.
    assert found(Report.objects.all(), "バンキング") == {intrusion}
    blackout = reports["blackout"]
    blackout.versions.all().delete()
    blackout.classifications.all().delete()
    blackout.grants.all().delete()
    blackout.delete()
    assert found(Report.objects.all(), "電子カルテ") == set()


def test_search_is_one_query(community, reports):
    with CaptureQueriesContext(connection) as queries:
        list(search_reports(Report.objects.restrict(community.nisc_coordinator), "不正アクセス 停電"))
    assert len(queries) <= 6  # the principal's few queries, then one for the rows


def test_the_database_has_its_trigram_index(community, reports):
    """SQLite: the FTS5 triggers exist. Django rebuilds a SQLite table to alter a column, dropping its
    triggers; a migration that does so must create them again (see migration 0002).
    PostgreSQL: substring search is planned on the pg_trgm index."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%search%'")
            names = {row[0] for row in cursor.fetchall()}
            for table in ("sharing_report", "sharing_anonymizedreport"):
                assert {f"{table}_search_insert", f"{table}_search_update", f"{table}_search_delete"} <= names
        else:
            cursor.execute("SET LOCAL enable_seqscan = off")
            sql, params = search_reports(Report.objects.order_by(), "不正アクセス").query.sql_with_params()
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "sharing_report_narrative_trgm" in plan


# --- Anonymized copies -------------------------------------------------------------------------------


def test_anonymized_copies_are_searched_by_their_own_text(community, reports):
    copy = AnonymizedReport.objects.create(
        source=reports["intrusion"],
        kind=reports["intrusion"].kind,
        cause=reports["intrusion"].cause,
        title="金融機関への不正アクセス",
        narrative="ある事業者で停電に伴う障害が発生した。",
    )
    everything = AnonymizedReport.objects.all()
    assert set(search_anonymized(everything, "不正アクセス")) == {copy}
    assert set(search_anonymized(everything, "停電")) == {copy}
    assert set(search_anonymized(everything, "バンキング")) == set()
    AnonymizedReport.objects.filter(pk=copy.pk).update(title="事案")
    assert set(search_anonymized(everything, "不正アクセス")) == set()
    for query in HOSTILE_QUERIES:
        search_anonymized(everything, query).count()


# --- Filters -----------------------------------------------------------------------------------------


def test_filter_by_sector_tlp_and_status(community, reports):
    everything = Report.objects.all()
    assert set(filter_reports(everything, sector="medical")) == {reports["blackout"]}
    assert set(filter_reports(everything, tlp=Tlp.GREEN)) == {reports["ransomware"]}
    Report.objects.filter(pk=reports["blackout"].pk).update(status=ReportStatus.RESOLVED)
    assert set(filter_reports(everything, status=ReportStatus.RESOLVED)) == {reports["blackout"]}
    assert set(filter_reports(everything, sector="finance", tlp=Tlp.AMBER)) == {reports["intrusion"]}


def test_top_level_cause_includes_its_subcategories(community, reports):
    everything = Report.objects.all()
    assert set(filter_reports(everything, cause="intentional")) == {
        reports["intrusion"],
        reports["ransomware"],
    }
    assert set(filter_reports(everything, cause="intentional.malware")) == {reports["ransomware"]}
    assert set(filter_reports(everything, cause="environmental")) == {reports["blackout"]}
    assert set(filter_reports(everything, cause="spillover")) == set()
    assert cause("intentional.malware").parent.code == "intentional"


def test_filter_by_detection_date_range(community, reports):
    everything = Report.objects.all()
    old = reports["blackout"]
    detected = timezone.localtime() - dt.timedelta(days=40)
    Report.objects.filter(pk=old.pk).update(detected_at=detected)
    day = detected.date()
    assert set(filter_reports(everything, since=day + dt.timedelta(days=1))) == {
        reports["intrusion"],
        reports["ransomware"],
    }
    # Dates are whole days at both ends.
    assert set(filter_reports(everything, since=day, until=day)) == {old}
    assert set(filter_reports(everything, until=day - dt.timedelta(days=1))) == set()
    # Datetimes are exact; naive ones are in Japan time.
    assert set(filter_reports(everything, until=detected)) == {old}
    assert set(filter_reports(everything, until=detected - dt.timedelta(seconds=1))) == set()
    naive = dt.datetime.combine(day, dt.time.min)
    assert filter_reports(everything, since=naive).count() == 3


def test_filter_anonymized_by_sector_and_cause(community, reports):
    source = reports["intrusion"]
    kept = AnonymizedReport.objects.create(
        source=source,
        sector=source.sector,
        kind=source.kind,
        cause=source.cause,
        title="事案",
        narrative="概要",
    )
    generalized = AnonymizedReport.objects.create(
        source=source,
        kind=source.kind,
        cause=cause("environmental.disaster"),
        title="事案",
        narrative="概要",
    )
    everything = AnonymizedReport.objects.all()
    assert set(filter_anonymized(everything, sector="finance")) == {kept}
    assert set(filter_anonymized(everything, cause="environmental")) == {generalized}
    assert set(filter_anonymized(everything)) == {kept, generalized}
    with pytest.raises(ValidationError):
        filter_anonymized(everything, sector="nowhere")


@pytest.mark.parametrize(
    ("field", "value"),
    [("sector", "nowhere"), ("cause", "intentional.nothing"), ("tlp", "PURPLE"), ("status", "lost")],
)
def test_unknown_codes_are_validation_errors(community, field, value):
    with pytest.raises(ValidationError) as error:
        filter_reports(Report.objects.all(), **{field: value})
    assert field in error.value.message_dict


def test_filters_and_search_combine_within_restrict(community, reports):
    fsa = Report.objects.restrict(community.fsa_coordinator)
    result = filter_reports(search_reports(fsa, "不正"), cause="intentional", sector="finance")
    assert set(result) == {reports["intrusion"]}
    hospital = Report.objects.restrict(community.hospital_reporter)
    assert not filter_reports(search_reports(hospital, "不正"), cause="intentional").exists()
