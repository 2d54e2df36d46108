"""API shapes for the directory: sectors, organizations, people."""

from ninja import Field, Schema

from renkei.core.schemas import PageQuery
from renkei.directory.choices import ContactKind, OrganizationType, Role, SizeClass


class OrganizationRefOut(Schema):
    """Enough of an organization to name it and link to it."""

    id: int
    name_ja: str
    name_en: str
    type: OrganizationType


class SectorOut(Schema):
    code: str = Field(description="Stable identifier, used by the `sector` filters.")
    name_ja: str
    name_en: str
    ministries: list[OrganizationRefOut] = Field(description="The sector ministries that oversee the sector.")
    active: bool
    added_in: int | None = Field(description="The year the sector joined the action plan's scope.")


class OrganizationOut(Schema):
    id: int
    name_ja: str
    name_en: str
    type: OrganizationType
    sectors: list[str] = Field(description="Codes of the organization's sectors.")
    size: SizeClass | None = Field(description="Size class of operators and vendors; null for public bodies.")
    parent: OrganizationRefOut | None = Field(
        description="The body this organization reports through, e.g. an operator's CEPTOAR."
    )
    active: bool


class MemberOut(Schema):
    id: int
    username: str
    display_name: str
    roles: list[Role]


class ContactRouteOut(Schema):
    kind: ContactKind
    value: str = Field(description="The address or number.")
    label: str
    priority: int = Field(description="1 is tried first.")


class OrganizationDetailOut(OrganizationOut):
    members: list[MemberOut] | None = Field(
        description="The organization's people and their roles. null when the organization is outside "
        "your reporting chain (its own staff, its CEPTOAR and the bodies reporting through it, its sector "
        "ministries and the national centre see them)."
    )
    contact_routes: list[ContactRouteOut] | None = Field(
        description="How to reach the organization, in order of priority. "
        "null under the same rule as `members`."
    )


class OrganizationPageOut(Schema):
    items: list[OrganizationOut]
    count: int = Field(description="Number of organizations matching the filters, on all pages.")
    next: str | None = Field(description="URL of the next page; null on the last page.")


class OrganizationQuery(PageQuery):
    type: OrganizationType | None = Field(None, description="Only organizations of this type.")
    sector: str | None = Field(None, description="Only organizations in the sector with this code.")
    size: SizeClass | None = Field(None, description="Only operators and vendors of this size class.")
    q: str | None = Field(
        None, max_length=200, description="Part of the Japanese or English name, case-insensitive."
    )


class PersonMembershipOut(Schema):
    organization: OrganizationRefOut
    roles: list[Role]


class PersonOut(Schema):
    id: int
    username: str
    display_name: str
    organizations: list[PersonMembershipOut] = Field(
        description="The person's organizations that you may see the people of, with their roles."
    )


class PersonPageOut(Schema):
    items: list[PersonOut]
    count: int = Field(description="Number of people matching the filters, on all pages.")
    next: str | None = Field(description="URL of the next page; null on the last page.")


class PersonQuery(PageQuery):
    organization: int | None = Field(None, description="Only members of the organization with this id.")
    q: str | None = Field(
        None, max_length=200, description="Part of the username or display name, case-insensitive."
    )
