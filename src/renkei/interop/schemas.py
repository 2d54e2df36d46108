"""API shapes of collections and imports."""

import datetime as dt
from uuid import UUID

from ninja import Field, Schema

from renkei.directory.choices import OrganizationType
from renkei.interop.models import CollectionAudience
from renkei.sharing.choices import Tlp

MAX_NAMES = 500


class NamedAudience(Schema):
    """Who may read a collection whose audience is `named`: everyone matching one of them."""

    all_ci: bool = Field(False, description="Every organization of critical infrastructure.")
    sectors: list[str] = Field([], max_length=MAX_NAMES, description="Sector codes.")
    organization_types: list[OrganizationType] = Field([], max_length=MAX_NAMES)


class CollectionIn(Schema):
    organization: int | None = Field(
        None, description="The owning organization's id; may be left out when you manage only one."
    )
    title: str = Field(max_length=200)
    description: str = Field("", max_length=10_000)
    tlp: Tlp = Tlp.AMBER
    audience: CollectionAudience = Field(
        CollectionAudience.CHAIN,
        description="`chain` (the owner's mandated chain, like a report) or `named`.",
    )
    named_audience: NamedAudience = Field(
        default_factory=NamedAudience, description="Used when `audience` is `named`."
    )


class CollectionOut(Schema):
    id: UUID = Field(description="The TAXII collection id.")
    title: str
    description: str
    owner: str = Field(description="The owning organization's name.")
    tlp: str = Field(description="The TLP 2.0 label every object in it carries.")
    audience: str = Field(description="`chain` (the owner's mandated chain, like a report) or `named`.")
    named_audience: NamedAudience = Field(description="Who may read it, when `audience` is `named`.")
    can_write: bool = Field(description="Whether you may add objects to it.")


class FailureOut(Schema):
    id: str | None = Field(description="The object's STIX id, when it had a readable one.")
    version: str | None = Field(description="Its `modified` (or `created`) timestamp, when readable.")
    message: str = Field(description="Why it was rejected.")


class IngestStatusOut(Schema):
    id: UUID = Field(description="The status id; TAXII serves the same at /taxii2/api/status/{id}/.")
    collection: UUID
    requested_at: dt.datetime
    total_count: int
    success_count: int = Field(description="Objects accepted (stored, or already held in that version).")
    failure_count: int
    failures: list[FailureOut]
