"""The directory over the API: sectors, organizations, people — filters, access and query counts."""

from urllib.parse import parse_qs, urlparse

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from renkei.core.problems import PROBLEM_CONTENT_TYPE, ProblemType
from renkei.core.services import token_create
from renkei.directory.choices import OrganizationType, Role
from renkei.directory.models import Organization, Sector
from renkei.directory.tests.factories import (
    ContactRouteFactory,
    MembershipFactory,
    OrganizationFactory,
    member,
)

ORGANIZATIONS = "/api/v1/organizations"
PEOPLE = "/api/v1/people"


def bearer(user) -> dict:
    _token, secret = token_create(actor=user, user=user)
    return {"Authorization": f"Bearer {secret}"}


def invalid_names(response) -> set[str]:
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert body["type"] == ProblemType.VALIDATION
    return {param["name"] for param in body["invalid_params"]}


def names(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {organization["name_en"] for organization in response.json()["items"]}


@pytest.fixture
def reporter_headers(community):
    return bearer(community.bank_a_reporter)


# --- Sectors --------------------------------------------------------------------------------------


def test_sectors_list_every_sector_with_its_ministries(client, community, reporter_headers):
    response = client.get("/api/v1/sectors", headers=reporter_headers)
    assert response.status_code == 200
    sectors = response.json()
    assert [sector["code"] for sector in sectors] == list(Sector.objects.values_list("code", flat=True))
    assert len(sectors) == 15
    finance = next(sector for sector in sectors if sector["code"] == "finance")
    assert finance == {
        "code": "finance",
        "name_ja": "金融",
        "name_en": "Financial services",
        "ministries": [
            {
                "id": community.fsa.pk,
                "name_ja": "金融庁",
                "name_en": community.fsa.name_en,
                "type": "sector_ministry",
            }
        ],
        "active": True,
        "added_in": 2005,
    }


def test_one_sector_by_code(client, community, reporter_headers):
    response = client.get("/api/v1/sectors/medical", headers=reporter_headers)
    assert response.status_code == 200
    assert response.json()["ministries"][0]["id"] == community.mhlw.pk


def test_unknown_sector_is_404(client, community, reporter_headers):
    response = client.get("/api/v1/sectors/space", headers=reporter_headers)
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE


@pytest.mark.django_db
def test_sectors_require_authentication(client):
    assert client.get("/api/v1/sectors").status_code == 401
    assert client.get("/api/v1/sectors/finance").status_code == 401


# --- Organization list ----------------------------------------------------------------------------


def test_organizations_are_paginated_with_a_next_link(client, community, reporter_headers):
    total = Organization.objects.count()
    first = client.get(f"{ORGANIZATIONS}?limit=2", headers=reporter_headers).json()
    assert first["count"] == total
    assert len(first["items"]) == 2
    next_url = urlparse(first["next"])
    assert next_url.scheme == "http" and next_url.path == ORGANIZATIONS
    assert parse_qs(next_url.query)["offset"] == ["2"]
    assert parse_qs(next_url.query)["limit"] == ["2"]

    second = client.get(f"{next_url.path}?{next_url.query}", headers=reporter_headers).json()
    assert {org["id"] for org in second["items"]}.isdisjoint({org["id"] for org in first["items"]})

    last = client.get(f"{ORGANIZATIONS}?limit=2&offset={total - 1}", headers=reporter_headers).json()
    assert len(last["items"]) == 1
    assert last["next"] is None


def test_organizations_default_page_size_is_50(client, community, reporter_headers):
    for _extra in range(60 - Organization.objects.count()):
        OrganizationFactory(sectors=[community.finance])
    body = client.get(ORGANIZATIONS, headers=reporter_headers).json()
    assert body["count"] == 60
    assert len(body["items"]) == 50
    assert parse_qs(urlparse(body["next"]).query) == {"offset": ["50"], "limit": ["50"]}


def test_empty_parameters_mean_no_filter(client, community, reporter_headers):
    # What an HTML filter form sends for "all types", "all sectors", and so on.
    body = client.get(
        f"{ORGANIZATIONS}?type=&sector=&size=&q=&limit=&offset=", headers=reporter_headers
    ).json()
    assert body["count"] == Organization.objects.count()
    assert len(body["items"]) == min(50, body["count"])


def test_next_link_keeps_the_filters(client, community, reporter_headers):
    body = client.get(f"{ORGANIZATIONS}?sector=finance&limit=1", headers=reporter_headers).json()
    assert parse_qs(urlparse(body["next"]).query)["sector"] == ["finance"]


def test_organization_fields(client, community, reporter_headers):
    body = client.get(f"{ORGANIZATIONS}?q=sakura", headers=reporter_headers).json()
    assert body["items"] == [
        {
            "id": community.bank_a.pk,
            "name_ja": "さくら銀行",
            "name_en": "Sakura Bank",
            "type": "operator",
            "sectors": ["finance"],
            "size": "large",
            "parent": {
                "id": community.bank_ceptoar.pk,
                "name_ja": "銀行等セプター",
                "name_en": community.bank_ceptoar.name_en,
                "type": "ceptoar",
            },
            "active": True,
        }
    ]


def test_organizations_filter_by_type_sector_size_and_name(client, community, reporter_headers):
    def query(params: str) -> set[str]:
        return names(client.get(f"{ORGANIZATIONS}?limit=500&{params}", headers=reporter_headers))

    assert query("type=operator") == {"Sakura Bank", "Momiji Bank", "Midori Hospital"}
    assert query("type=operator&sector=finance") == {"Sakura Bank", "Momiji Bank"}
    assert query("type=operator&size=sme") == {"Momiji Bank", "Midori Hospital"}
    assert query("sector=medical&size=sme") == {"Midori Hospital"}
    assert query("type=operator&q=BANK") == {"Sakura Bank", "Momiji Bank"}
    assert "Banks CEPTOAR" in query("q=bank")
    assert query("q=みどり") == {"Midori Hospital"}
    assert query("q=nothing-like-this") == set()
    ministries = client.get(
        f"{ORGANIZATIONS}?type=sector_ministry&limit=500", headers=reporter_headers
    ).json()
    assert ministries["count"] == Organization.objects.filter(type=OrganizationType.SECTOR_MINISTRY).count()


@pytest.mark.parametrize(
    ("params", "invalid"),
    [
        ("type=bank", {"type"}),
        ("size=huge", {"size"}),
        ("sector=space", {"sector"}),
        ("limit=0", {"limit"}),
        ("limit=501", {"limit"}),
        ("limit=ten", {"limit"}),
        ("offset=-1", {"offset"}),
        ("type=bank&size=huge", {"type", "size"}),
    ],
)
def test_unknown_codes_and_bad_pages_are_422_not_empty_lists(
    client, community, reporter_headers, params, invalid
):
    assert invalid_names(client.get(f"{ORGANIZATIONS}?{params}", headers=reporter_headers)) == invalid


def test_unknown_sector_reason_names_the_code(client, community):
    community.bank_a_reporter.language = "en"
    community.bank_a_reporter.save()
    body = client.get(f"{ORGANIZATIONS}?sector=space", headers=bearer(community.bank_a_reporter)).json()
    assert body["invalid_params"] == [
        {"name": "sector", "location": "query", "reason": "Unknown sector code: space"}
    ]


def test_limit_500_is_allowed(client, community, reporter_headers):
    assert client.get(f"{ORGANIZATIONS}?limit=500", headers=reporter_headers).status_code == 200


@pytest.mark.django_db
def test_organizations_require_authentication(client):
    response = client.get(ORGANIZATIONS)
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE


def _query_count(client, url, headers) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, headers=headers).status_code == 200
    return len(queries)


def test_organization_list_query_count_does_not_grow_with_the_page(
    client, community, reporter_headers, django_assert_max_num_queries
):
    for number in range(50):
        OrganizationFactory(
            name_ja=f"試験電力{number}",
            name_en=f"Test Power {number}",
            sectors=[community.finance, community.medical],
            parent=community.bank_ceptoar,
            size="large",
        )
    client.get(ORGANIZATIONS, headers=reporter_headers)  # records the token's first use

    small_page = _query_count(client, f"{ORGANIZATIONS}?q=Test Power&limit=5", reporter_headers)
    with django_assert_max_num_queries(8):
        body = client.get(f"{ORGANIZATIONS}?q=Test Power&limit=50", headers=reporter_headers).json()
    assert len(body["items"]) == 50
    assert all(len(item["sectors"]) == 2 and item["parent"] for item in body["items"])
    assert _query_count(client, f"{ORGANIZATIONS}?q=Test Power&limit=50", reporter_headers) == small_page


def test_sector_list_query_count_is_constant(
    client, community, reporter_headers, django_assert_max_num_queries
):
    client.get("/api/v1/sectors", headers=reporter_headers)
    with django_assert_max_num_queries(7):
        assert len(client.get("/api/v1/sectors", headers=reporter_headers).json()) == 15


# --- Organization detail --------------------------------------------------------------------------


def detail(client, user, organization):
    response = client.get(f"{ORGANIZATIONS}/{organization.pk}", headers=bearer(user))
    assert response.status_code == 200, response.content
    return response.json()


def test_operator_of_another_sector_sees_the_organization_but_not_its_people_or_contacts(client, community):
    body = detail(client, community.hospital_reporter, community.bank_a)
    assert body["name_en"] == "Sakura Bank"
    assert body["members"] is None
    assert body["contact_routes"] is None


@pytest.mark.parametrize(
    "viewer",
    ["bank_a_reporter", "ceptoar_officer", "fsa_coordinator", "nisc_coordinator"],
)
def test_own_staff_ceptoar_ministry_and_national_centre_see_members_and_contacts(client, community, viewer):
    body = detail(client, getattr(community, viewer), community.bank_a)
    assert {person["username"]: person["roles"] for person in body["members"]} == {
        "bank_a_admin": ["org_admin"],
        "bank_a_reporter": ["reporter"],
    }
    assert [route["kind"] for route in body["contact_routes"]] == ["email", "phone"]
    assert body["contact_routes"][1]["value"] == "03-0000-0000"


def test_ministry_of_another_sector_does_not_see_members_or_contacts(client, community):
    body = detail(client, community.mhlw_coordinator, community.bank_a)
    assert body["members"] is None
    assert body["contact_routes"] is None
    assert detail(client, community.mhlw_coordinator, community.hospital)["members"] is not None


def test_a_member_with_several_roles_is_listed_once(client, community):
    MembershipFactory(user=community.bank_a_reporter, organization=community.bank_a, role=Role.OFFICER)
    body = detail(client, community.nisc_coordinator, community.bank_a)
    members = [person for person in body["members"] if person["username"] == "bank_a_reporter"]
    assert members == [
        {
            "id": community.bank_a_reporter.pk,
            "username": "bank_a_reporter",
            "display_name": "",
            "roles": ["officer", "reporter"],
        }
    ]


def test_missing_organization_is_404(client, community, reporter_headers):
    missing = Organization.objects.order_by("-pk").first().pk + 1000
    response = client.get(f"{ORGANIZATIONS}/{missing}", headers=reporter_headers)
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    assert client.get(f"{ORGANIZATIONS}/not-a-number", headers=reporter_headers).status_code == 404


def test_organization_detail_query_count(client, community, django_assert_max_num_queries):
    for number in range(20):
        member(community.bank_a, Role.REPORTER, f"bank_a_staff_{number}")
        ContactRouteFactory(organization=community.bank_a, kind="other", value=f"radio channel {number}")
    headers = bearer(community.nisc_coordinator)
    client.get(f"{ORGANIZATIONS}/{community.bank_a.pk}", headers=headers)
    with django_assert_max_num_queries(10):
        body = client.get(f"{ORGANIZATIONS}/{community.bank_a.pk}", headers=headers).json()
    assert len(body["members"]) == 22
    assert len(body["contact_routes"]) == 22


# --- People ---------------------------------------------------------------------------------------


def usernames(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {person["username"] for person in response.json()["items"]}


def test_people_are_those_in_the_viewers_chain(client, community):
    visible = usernames(client.get(f"{PEOPLE}?limit=500", headers=bearer(community.hospital_reporter)))
    # Itself, its ministry (MHLW) and the national centre; not the banks' or the FSA's people.
    assert visible == {"hospital_reporter", "mhlw_coord", "nisc_coord"}


def test_national_centre_sees_everyone(client, community):
    visible = usernames(client.get(f"{PEOPLE}?limit=500", headers=bearer(community.nisc_coordinator)))
    assert {"bank_a_reporter", "bank_b_reporter", "hospital_reporter", "fsa_coord"} <= visible


def test_people_filters(client, community):
    headers = bearer(community.nisc_coordinator)
    assert usernames(client.get(f"{PEOPLE}?organization={community.bank_a.pk}", headers=headers)) == {
        "bank_a_admin",
        "bank_a_reporter",
    }
    assert usernames(client.get(f"{PEOPLE}?q=BANK_B", headers=headers)) == {"bank_b_reporter"}
    assert invalid_names(client.get(f"{PEOPLE}?organization=abc", headers=headers)) == {"organization"}


def test_person_lists_their_organizations_and_roles(client, community):
    response = client.get(f"{PEOPLE}/{community.bank_a_admin.pk}", headers=bearer(community.fsa_coordinator))
    assert response.status_code == 200
    assert response.json() == {
        "id": community.bank_a_admin.pk,
        "username": "bank_a_admin",
        "display_name": "",
        "organizations": [
            {
                "organization": {
                    "id": community.bank_a.pk,
                    "name_ja": "さくら銀行",
                    "name_en": "Sakura Bank",
                    "type": "operator",
                },
                "roles": ["org_admin"],
            }
        ],
    }


def test_forbidden_person_is_the_same_404_as_a_missing_one(client, community):
    headers = bearer(community.hospital_reporter)
    forbidden = client.get(f"{PEOPLE}/{community.bank_a_reporter.pk}", headers=headers)
    missing = client.get(f"{PEOPLE}/{community.bank_a_reporter.pk + 100000}", headers=headers)
    assert forbidden.status_code == missing.status_code == 404
    assert forbidden["Content-Type"] == missing["Content-Type"] == PROBLEM_CONTENT_TYPE
    assert forbidden.content == missing.content
    missing_organization = client.get(
        f"{ORGANIZATIONS}/{Organization.objects.count() + 100000}", headers=headers
    )
    assert missing_organization.content == forbidden.content


def test_people_list_query_count_does_not_grow_with_the_page(
    client, community, django_assert_max_num_queries
):
    for number in range(50):
        person = member(community.bank_a, Role.REPORTER, f"bulk_{number}")
        MembershipFactory(user=person, organization=community.bank_ceptoar, role=Role.OFFICER)
    headers = bearer(community.nisc_coordinator)
    client.get(PEOPLE, headers=headers)
    small_page = _query_count(client, f"{PEOPLE}?q=bulk_&limit=5", headers)
    with django_assert_max_num_queries(8):
        body = client.get(f"{PEOPLE}?q=bulk_&limit=50", headers=headers).json()
    assert len(body["items"]) == 50
    assert all(len(person["organizations"]) == 2 for person in body["items"])
    assert _query_count(client, f"{PEOPLE}?q=bulk_&limit=50", headers) == small_page
