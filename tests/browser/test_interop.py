"""STIX in a real browser, in Japanese: an operator imports a bundle into its own collection, reads
which object was rejected and why, and opens what was stored; the sector's ministry reads it too."""

import json
import re

import pytest
from playwright.sync_api import expect
from test_sharing import OPERATOR, OPERATOR_ORGANIZATION, menu_link, sign_in, sign_out

from renkei.interop.models import StixObject
from renkei.interop.tests.stix_objects import bundle, indicator

pytestmark = pytest.mark.browser

MINISTRY = "fsa-coordinator"


def test_operator_imports_a_bundle_and_the_ministry_reads_it(demo, visitor, tmp_path):
    broken = indicator(2, pattern="[ipv4-addr:value = '198.51.100.2'")
    upload = tmp_path / "bundle.json"
    upload.write_text(json.dumps(bundle(indicator(1), broken)))

    sign_in(visitor, OPERATOR)
    menu_link(visitor, "/exchange/").click()
    visitor.checkpoint("collections")
    visitor.page.get_by_role("link", name=re.compile(OPERATOR_ORGANIZATION)).first.click()
    visitor.checkpoint("own-collection")
    visitor.page.locator("input[name=format][value=stix]").check()
    visitor.page.locator("input[name=bundle]").set_input_files(upload)
    visitor.page.locator("form[enctype='multipart/form-data'] button[type=submit]").click()
    visitor.checkpoint("import-result")
    expect(visitor.page.get_by_test_id("accepted")).to_have_text("1")
    expect(visitor.page.get_by_test_id("rejected")).to_have_text("1")
    expect(visitor.page.get_by_role("row", name=re.compile(broken["id"]))).to_contain_text("pattern")

    visitor.page.locator(
        f"a[href='/exchange/collections/{StixObject.objects.get(stix_id=indicator(1)['id']).collection_id}/']"
    ).last.click()
    visitor.page.get_by_role("link", name="C2 server 1").click()
    visitor.checkpoint("object")
    expect(visitor.page.locator("pre")).to_contain_text(indicator(1)["pattern"].replace("'", "'"))
    object_path = visitor.page.url.removeprefix(visitor.base_url)
    sign_out(visitor)

    sign_in(visitor, MINISTRY)
    visitor.open(object_path, "object-as-ministry")
    expect(visitor.page.get_by_test_id("stix-id")).to_have_text(indicator(1)["id"])


def test_the_national_centre_publishes_a_collection_to_all_critical_infrastructure(demo, visitor):
    sign_in(visitor, "nco-officer")
    menu_link(visitor, "/exchange/").click()
    visitor.page.get_by_role("link", name="新しいコレクション").click()
    visitor.checkpoint("collection-new")
    visitor.page.locator("input[name=title]").fill("重要インフラ全体向け指標")
    visitor.page.locator("input[name=tlp][value=GREEN]").check()
    visitor.page.locator("input[name=audience][value=named]").check()
    visitor.page.locator("input[name=all_ci]").check()
    visitor.page.get_by_role("button", name="作成").click()
    visitor.checkpoint("collection-created")
    expect(visitor.page.get_by_role("heading", level=1)).to_have_text("重要インフラ全体向け指標")
    expect(visitor.page.locator("dl.summary")).to_contain_text("重要インフラ全体")
    sign_out(visitor)

    sign_in(visitor, OPERATOR)
    menu_link(visitor, "/exchange/").click()
    row = visitor.page.get_by_role("row", name=re.compile("重要インフラ全体向け指標"))
    expect(row).to_contain_text("閲覧")
    expect(visitor.page.get_by_role("link", name="新しいコレクション")).to_have_count(0)
