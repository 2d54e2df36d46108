"""Shapes shared by every app's API: problem details, pagination, the signed-in user."""

from ninja import Field, Schema
from pydantic import field_validator
from pydantic_core import PydanticUseDefault

from renkei.directory.choices import Language, OrganizationType, Role

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


class InvalidParamOut(Schema):
    name: str = Field(description="The parameter or field, e.g. `limit`.")
    location: str = Field(description="Where it was sent: `query`, `path` or `body`.")
    reason: str = Field(description="Why it is invalid, in the request's language.")


class ProblemOut(Schema):
    """An error, as RFC 7807 problem details (served as `application/problem+json`)."""

    type: str = Field(
        description="`about:blank` when the status says it all, "
        "otherwise a `urn:renkei:problem:…` identifier."
    )
    title: str = Field(description="Short summary of the kind of problem, in the request's language.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong this time, in the request's language.")
    invalid_params: list[InvalidParamOut] | None = Field(
        None, description="Validation errors only (422): one entry per invalid parameter."
    )


class PageQuery(Schema):
    """`limit`/`offset` pagination, shared by every list endpoint."""

    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Items per page.")
    offset: int = Field(0, ge=0, description="Number of items to skip.")

    @field_validator("*", mode="before")
    @classmethod
    def empty_means_absent(cls, value):
        # A filter form submits its empty "all" choice as `type=`: that is no filter, not an error.
        if value == "":
            raise PydanticUseDefault
        return value


class UserOut(Schema):
    id: int
    username: str
    display_name: str
    email: str
    language: Language | None = Field(
        description="The user's chosen interface language; null when not chosen (Japanese is the default)."
    )


class MyOrganizationOut(Schema):
    id: int
    name_ja: str
    name_en: str
    type: OrganizationType
    sectors: list[str] = Field(description="Codes of the organization's sectors.")
    roles: list[Role] = Field(description="The roles the user holds in this organization.")


class MeOut(Schema):
    user: UserOut
    organizations: list[MyOrganizationOut] = Field(
        description="Active organizations the user belongs to, with the user's roles in each."
    )
    two_factor_required: bool = Field(
        description="Whether the user must pass TOTP two-factor authentication in the web interface: "
        "always for national-centre and ministry staff, and for anyone who has set up an authenticator."
    )
