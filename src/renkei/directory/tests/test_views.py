"""Directory pages: what each position in the community may see and change."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from renkei.audit.models import AuditRecord
from renkei.directory.choices import Role
from renkei.directory.models import ContactRoute, Membership, Organization, User
from renkei.directory.tests.factories import OrganizationFactory, member


def signed_in(user) -> Client:
    """A client for `user`, past two-factor authentication if their organization requires it."""
    client = Client()
    client.force_login(user)
    device = TOTPDevice.objects.create(user=user, name="test", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def same_page(first, second) -> bool:
    """Whether two responses are identical apart from their own address (in the language switcher)
    and the CSRF token (masked afresh on every render)."""

    def normalized(response) -> str:
        html = response.content.decode().replace(response.request["PATH_INFO"], "")
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)

    return normalized(first) == normalized(second)


def detail_url(organization) -> str:
    return reverse("directory:organization_detail", kwargs={"pk": organization.pk})


# --- Sectors ----------------------------------------------------------------------------------------


def test_sector_list_shows_codes_names_ministries_ceptoars_and_operator_counts(community):
    response = signed_in(community.bank_a_reporter).get(reverse("directory:sector_list"))
    html = response.content.decode()
    assert response.status_code == 200
    for text in ("finance", "金融", "Financial services", "金融庁", "銀行等セプター", "証券セプター", "港湾"):
        assert text in html
    finance = next(sector for sector in response.context["sectors"] if sector.code == "finance")
    assert finance.operator_count == 2


def test_sector_list_query_count_does_not_grow_with_sectors(community):
    client = signed_in(community.bank_a_reporter)
    client.get(reverse("directory:sector_list"))  # warm the session and principal
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("directory:sector_list"))
    assert len(queries) <= 12


@pytest.mark.parametrize("url_name", ["directory:organization_list", "directory:person_list"])
def test_list_query_count_does_not_grow_with_rows(community, url_name):
    client = signed_in(community.nisc_coordinator)
    client.get(reverse(url_name))

    def queries_for_page() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse(url_name)).status_code == 200
        return len(queries)

    before = queries_for_page()
    for number in range(10):
        organization = OrganizationFactory(sectors=[community.finance, community.medical])
        member(organization, Role.REPORTER, f"extra_reporter_{number}")
    assert queries_for_page() == before


def test_sector_detail_lists_operators_and_404s_for_unknown_codes(community):
    client = signed_in(community.bank_a_reporter)
    html = client.get(reverse("directory:sector_detail", kwargs={"code": "finance"})).content.decode()
    assert "さくら銀行" in html and "もみじ銀行" in html
    assert "みどり病院" not in html
    assert client.get(reverse("directory:sector_detail", kwargs={"code": "nope"})).status_code == 404


# --- Organization list ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, present, absent",
    [
        ({"type": "operator"}, ["さくら銀行", "みどり病院"], ["銀行等セプター"]),
        ({"sector": "medical"}, ["みどり病院", "医療セプター"], ["さくら銀行"]),
        ({"size": "sme"}, ["もみじ銀行", "みどり病院"], ["さくら銀行"]),
        ({"q": "sakura"}, ["さくら銀行"], ["もみじ銀行"]),
        ({"q": "銀行", "size": "large"}, ["さくら銀行"], ["もみじ銀行", "銀行等セプター"]),
    ],
)
def test_organization_list_filters(community, query, present, absent):
    response = signed_in(community.hospital_reporter).get(reverse("directory:organization_list"), query)
    listed = {organization.name_ja for organization in response.context["page"]}
    assert set(present) <= listed
    assert not set(absent) & listed


def test_organization_list_ignores_a_bad_filter_value_instead_of_failing(community):
    response = signed_in(community.hospital_reporter).get(
        reverse("directory:organization_list"), {"sector": "no-such-sector", "type": "operator"}
    )
    assert response.status_code == 200
    assert "さくら銀行" in response.content.decode()


def test_organization_list_htmx_request_gets_only_the_results(community):
    client = signed_in(community.hospital_reporter)
    url = reverse("directory:organization_list")
    full = client.get(url, {"type": "operator"})
    partial = client.get(url, {"type": "operator"}, headers={"HX-Request": "true"})
    assert "<html" in full.content.decode()
    body = partial.content.decode()
    assert "<html" not in body
    assert "さくら銀行" in body
    # The count is updated inside the existing live region, so screen readers announce it.
    assert 'id="organization-count" class="results-summary" role="status" hx-swap-oob="innerHTML"' in body
    assert "HX-Request" in partial["Vary"]


def test_organization_list_paginates(community):
    for number in range(30):
        OrganizationFactory(name_ja=f"テスト事業者{number:02d}", sectors=[community.finance])
    client = signed_in(community.hospital_reporter)
    first = client.get(reverse("directory:organization_list"), {"q": "テスト事業者"})
    second = client.get(reverse("directory:organization_list"), {"q": "テスト事業者", "page": 2})
    assert len(first.context["page"]) == 25
    assert len(second.context["page"]) == 5
    assert "q=%E3%83%86" in first.content.decode()  # the filter is kept in the page links


# --- Organization page: members and contact routes by reporting chain -------------------------------


def test_own_organization_shows_members_and_contact_routes(community):
    html = signed_in(community.bank_a_reporter).get(detail_url(community.bank_a)).content.decode()
    assert "bank_a_admin" in html
    assert "03-0000-0000" in html


def test_another_operator_shows_structure_but_not_members_or_routes(community):
    response = signed_in(community.hospital_reporter).get(detail_url(community.bank_a))
    html = response.content.decode()
    assert response.status_code == 200
    assert "さくら銀行" in html and "銀行等セプター" in html
    assert "bank_a_admin" not in html
    assert "03-0000-0000" not in html
    assert not response.context["can_view_contacts"]


@pytest.mark.parametrize("viewer", ["ceptoar_officer", "fsa_coordinator", "nisc_coordinator"])
def test_the_chain_above_an_operator_sees_its_members_and_routes(community, viewer):
    html = signed_in(getattr(community, viewer)).get(detail_url(community.bank_a)).content.decode()
    assert "bank_a_admin" in html
    assert "03-0000-0000" in html


def test_a_ministry_of_another_sector_does_not_see_an_operators_routes(community):
    html = signed_in(community.mhlw_coordinator).get(detail_url(community.bank_a)).content.decode()
    assert "bank_a_admin" not in html
    assert "03-0000-0000" not in html


def test_reporting_chain_lists_parent_bodies_ministries_and_national_centre(community):
    response = signed_in(community.hospital_reporter).get(detail_url(community.bank_a))
    labels = [str(step.label) for step in response.context["chain"]]
    names = [[o.name_ja for o in step.organizations] for step in response.context["chain"]]
    assert names == [["銀行等セプター", "セプターカウンシル"], ["金融庁"], ["国家サイバー統括室"]]
    assert len(labels) == 3


def test_warning_when_fewer_than_two_contact_routes(community):
    ContactRoute.objects.filter(organization=community.bank_a, kind="phone").delete()
    html = signed_in(community.bank_a_reporter).get(detail_url(community.bank_a)).content.decode()
    assert "連絡経路が2つ未満です" in html


def test_missing_and_forbidden_organizations_look_the_same(community):
    client = signed_in(community.hospital_reporter)
    missing = client.get(reverse("directory:organization_edit", kwargs={"pk": 999999}))
    forbidden = client.get(reverse("directory:organization_edit", kwargs={"pk": community.bank_a.pk}))
    assert missing.status_code == forbidden.status_code == 404
    assert same_page(missing, forbidden)


# --- Editing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "editor, allowed",
    [
        ("bank_a_admin", True),
        ("nisc_coordinator", True),
        ("bank_a_reporter", False),
        ("bank_b_reporter", False),
        ("ceptoar_officer", False),
        ("fsa_coordinator", False),
    ],
)
def test_only_org_admins_and_national_centre_may_edit(community, editor, allowed):
    client = signed_in(getattr(community, editor))
    pk = community.bank_a.pk
    for name in ("organization_edit", "contact_routes_edit", "member_add"):
        response = client.get(reverse(f"directory:{name}", kwargs={"pk": pk}))
        assert response.status_code == (200 if allowed else 404), name
    detail = client.get(detail_url(community.bank_a)).content.decode()
    assert (reverse("directory:organization_edit", kwargs={"pk": pk}) in detail) is allowed


def test_forbidden_edit_post_changes_nothing(community):
    client = signed_in(community.bank_b_reporter)
    response = client.post(
        reverse("directory:organization_edit", kwargs={"pk": community.bank_a.pk}),
        {"name_ja": "乗っ取り銀行", "sectors": [community.finance.pk], "size": "large", "active": "on"},
    )
    assert response.status_code == 404
    community.bank_a.refresh_from_db()
    assert community.bank_a.name_ja == "さくら銀行"


def test_org_admin_edits_the_organization_through_the_audited_service(community):
    client = signed_in(community.bank_a_admin)
    bank = community.bank_a
    response = client.post(
        reverse("directory:organization_edit", kwargs={"pk": bank.pk}),
        # The structural fields are disabled for an org admin: what it posts for them is ignored.
        {"name_ja": "乗っ取り銀行", "sectors": [community.medical.pk], "size": "sme", "active": "on"},
    )
    assert response.status_code == 302
    bank.refresh_from_db()
    assert (bank.name_ja, bank.size) == ("さくら銀行", "sme")
    assert list(bank.sectors.all()) == [community.finance]
    record = AuditRecord.objects.filter(object_type="directory.organization", object_id=str(bank.pk)).last()
    assert record.actor == community.bank_a_admin
    assert record.after["size"] == "sme"


def test_the_national_centre_renames_an_organization(community):
    client = signed_in(community.nisc_coordinator)
    bank = community.bank_a
    response = client.post(
        reverse("directory:organization_edit", kwargs={"pk": bank.pk}),
        {
            "name_ja": "さくら銀行株式会社",
            "name_en": "Sakura Bank, Ltd.",
            "sectors": [community.finance.pk],
            "parent": community.bank_ceptoar.pk,
            "size": "large",
            "active": "on",
        },
    )
    assert response.status_code == 302
    bank.refresh_from_db()
    assert bank.name_ja == "さくら銀行株式会社"
    record = AuditRecord.objects.filter(object_type="directory.organization", object_id=str(bank.pk)).last()
    assert record.actor == community.nisc_coordinator
    assert record.after["name_ja"] == "さくら銀行株式会社"


def test_edit_shows_service_errors_readably(community):
    client = signed_in(community.nisc_coordinator)
    response = client.post(
        reverse("directory:organization_edit", kwargs={"pk": community.bank_a.pk}),
        {"name_ja": "さくら銀行", "sectors": [], "size": "large", "active": "on"},
    )
    assert response.status_code == 200
    assert "重要インフラ事業者は少なくとも1つの分野に属します" in response.content.decode()
    assert response.context["organization"].name_ja == "さくら銀行"


def _routes_payload(rows, initial=0):
    data = {
        "routes-TOTAL_FORMS": str(len(rows)),
        "routes-INITIAL_FORMS": str(initial),
        "routes-MIN_NUM_FORMS": "0",
        "routes-MAX_NUM_FORMS": "20",
    }
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"routes-{index}-{key}"] = value
    return data


def test_contact_routes_need_at_least_two(community):
    client = signed_in(community.bank_a_admin)
    url = reverse("directory:contact_routes_edit", kwargs={"pk": community.bank_a.pk})
    response = client.post(
        url,
        _routes_payload(
            [
                {"kind": "email", "value": "soc@sakura.example.jp"},
                {"kind": "phone", "value": "03-0000-0000", "DELETE": "on"},
                {"kind": "", "value": ""},
            ],
            initial=2,
        ),
    )
    assert response.status_code == 200
    assert "組織には少なくとも2つの連絡経路（電子メールと電話など）が必要です。" in response.content.decode()
    assert ContactRoute.objects.filter(organization=community.bank_a).count() == 2


def test_contact_routes_are_replaced_and_a_removed_row_is_dropped(community):
    client = signed_in(community.bank_a_admin)
    url = reverse("directory:contact_routes_edit", kwargs={"pk": community.bank_a.pk})
    response = client.post(
        url,
        _routes_payload(
            [
                {"kind": "email", "value": "old@example.jp", "DELETE": "on"},
                {"kind": "phone", "value": "03-0123-4567"},
                {"kind": "email", "value": "soc@sakura.example.jp", "label": "SOC"},
                {"kind": "", "value": "", "label": ""},
            ],
            initial=2,
        ),
    )
    assert response.status_code == 302
    routes = list(
        ContactRoute.objects.filter(organization=community.bank_a).values_list("kind", "value", "label")
    )
    assert routes == [("phone", "03-0123-4567", ""), ("email", "soc@sakura.example.jp", "SOC")]
    assert AuditRecord.objects.filter(
        object_repr__endswith="contact routes", actor=community.bank_a_admin
    ).exists()


def test_contact_route_email_is_checked_on_the_form(community):
    client = signed_in(community.bank_a_admin)
    url = reverse("directory:contact_routes_edit", kwargs={"pk": community.bank_a.pk})
    response = client.post(
        url, _routes_payload([{"kind": "email", "value": "not-an-address"}, {"kind": "phone", "value": "03"}])
    )
    assert response.status_code == 200
    assert 'aria-invalid="true"' in response.content.decode()


def test_org_admin_adds_a_new_member(community):
    client = signed_in(community.bank_a_admin)
    response = client.post(
        reverse("directory:member_add", kwargs={"pk": community.bank_a.pk}),
        {"username": "sakura-analyst", "role": Role.ANALYST, "display_name": "分析 花子", "email": ""},
    )
    assert response.status_code == 302
    new_user = User.objects.get(username="sakura-analyst")
    assert Membership.objects.filter(user=new_user, organization=community.bank_a, role=Role.ANALYST).exists()


def test_org_admin_gives_an_existing_colleague_another_role(community):
    client = signed_in(community.bank_a_admin)
    client.post(
        reverse("directory:member_add", kwargs={"pk": community.bank_a.pk}),
        {"username": "bank_a_reporter", "role": Role.OFFICER},
    )
    roles = set(Membership.objects.filter(user=community.bank_a_reporter).values_list("role", flat=True))
    assert roles == {Role.REPORTER, Role.OFFICER}


def test_org_admin_cannot_pull_in_someone_from_another_organization(community):
    client = signed_in(community.bank_a_admin)
    response = client.post(
        reverse("directory:member_add", kwargs={"pk": community.bank_a.pk}),
        {"username": "hospital_reporter", "role": Role.REPORTER},
    )
    assert response.status_code == 200
    assert "hospital_reporter" in response.content.decode()  # "the username … is taken"
    assert not Membership.objects.filter(
        user=community.hospital_reporter, organization=community.bank_a
    ).exists()


# --- People -----------------------------------------------------------------------------------------


def test_people_list_shows_only_the_chain(community):
    response = signed_in(community.bank_a_reporter).get(reverse("directory:person_list"))
    usernames = {person.username for person in response.context["page"]}
    assert {"bank_a_reporter", "bank_a_admin", "bank_ceptoar_officer", "fsa_coord", "nisc_coord"} <= usernames
    assert "hospital_reporter" not in usernames
    assert "bank_b_reporter" not in usernames
    assert "mhlw_coord" not in usernames


def test_people_search(community):
    response = signed_in(community.nisc_coordinator).get(reverse("directory:person_list"), {"q": "hospital"})
    assert [person.username for person in response.context["page"]] == ["hospital_reporter"]


def test_person_page_for_someone_outside_the_chain_is_404(community):
    client = signed_in(community.bank_a_reporter)
    visible = client.get(reverse("directory:person_detail", kwargs={"pk": community.bank_a_admin.pk}))
    hidden = client.get(reverse("directory:person_detail", kwargs={"pk": community.hospital_reporter.pk}))
    missing = client.get(reverse("directory:person_detail", kwargs={"pk": 999999}))
    assert visible.status_code == 200
    assert "bank_a_admin@example.jp" in visible.content.decode()
    assert hidden.status_code == missing.status_code == 404
    assert same_page(hidden, missing)


def test_person_page_shows_dates_in_japan_time(community):
    person = community.bank_a_admin
    User.objects.filter(pk=person.pk).update(date_joined="2026-03-31T15:30:00Z")
    html = (
        signed_in(community.bank_a_reporter)
        .get(reverse("directory:person_detail", kwargs={"pk": person.pk}))
        .content.decode()
    )
    assert 'datetime="2026-04-01T00:30:00+09:00"' in html
    assert "2026年4月1日0:30 JST" in html


def test_inactive_members_are_not_listed(community):
    hidden = member(community.bank_a, Role.ANALYST, "former_analyst")
    User.objects.filter(pk=hidden.pk).update(is_active=False)
    html = signed_in(community.bank_a_reporter).get(detail_url(community.bank_a)).content.decode()
    assert "former_analyst" not in html


def test_organization_without_routes_warns_editors_with_a_link(community):
    empty = OrganizationFactory(name_ja="つばさ電力", sectors=[community.finance])
    admin = member(empty, Role.ORG_ADMIN, "tsubasa_admin")
    html = signed_in(admin).get(detail_url(empty)).content.decode()
    assert reverse("directory:contact_routes_edit", kwargs={"pk": empty.pk}) in html
    assert Organization.objects.get(pk=empty.pk).contact_routes.count() == 0
