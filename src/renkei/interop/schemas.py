"""API shapes of collections and imports."""

import datetime as dt
from uuid import UUID

from ninja import Field, Schema


class CollectionOut(Schema):
    id: UUID = Field(description="The TAXII collection id.")
    title: str
    description: str
    owner: str = Field(description="The owning organization's name.")
    tlp: str = Field(description="The TLP 2.0 label every object in it carries.")
    audience: str = Field(description="`chain` (the owner's mandated chain, like a report) or `named`.")
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
