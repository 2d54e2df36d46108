"""Reference rows looked up by code are kept per process, forgotten when they change here and
after REFERENCE_CACHE_SECONDS when they change elsewhere."""

import pytest

from renkei.core import reference_cache
from renkei.core.reference_cache import cached_reference
from renkei.directory.models import Sector
from renkei.sharing.deadlines import sector_default_profile
from renkei.sharing.models import DeadlineProfile


def sector_by_code(code: str):
    return cached_reference(("code", Sector, code), lambda: Sector.objects.filter(code=code).first())


def test_a_row_is_read_once_then_kept(reference_data, django_assert_num_queries):
    with django_assert_num_queries(1):
        first = sector_by_code("finance")
        assert sector_by_code("finance") is first


def test_a_change_saved_in_this_process_is_seen_at_once(reference_data):
    sector = sector_by_code("finance")
    renamed = Sector.objects.get(pk=sector.pk)
    renamed.name_en = "Finance and insurance"
    renamed.save()
    assert sector_by_code("finance").name_en == "Finance and insurance"


def test_a_change_made_elsewhere_is_seen_once_the_entry_is_old(reference_data, monkeypatch):
    sector = sector_by_code("finance")
    # As another process would: a write that sends no signal here.
    Sector.objects.filter(pk=sector.pk).update(name_en="Finance and insurance")
    assert sector_by_code("finance").name_en == sector.name_en
    now = reference_cache.time.monotonic()
    monkeypatch.setattr(
        reference_cache.time, "monotonic", lambda: now + reference_cache.REFERENCE_CACHE_SECONDS + 1
    )
    assert sector_by_code("finance").name_en == "Finance and insurance"


def test_unknown_codes_are_not_kept(db, django_assert_num_queries):
    with django_assert_num_queries(2):
        assert sector_by_code("no-such-sector") is None
        assert sector_by_code("no-such-sector") is None
    assert not reference_cache._entries


@pytest.mark.parametrize("change", ["add", "remove"])
def test_a_sectors_default_profile_follows_its_changes(reference_data, change):
    sector = Sector.objects.get(code="finance")
    before = sector_default_profile(sector)
    other = DeadlineProfile.objects.exclude(pk=before.pk).order_by("code").first()
    if change == "add":
        sector.default_deadline_profiles.set([other])
        assert sector_default_profile(sector) == other
    else:
        sector.default_deadline_profiles.clear()
        assert sector_default_profile(sector) is None
