"""STIX bundles over the JSON API: upload into a collection, read the outcome; list, create and change
collections."""

from uuid import UUID

from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from ninja import Field as NinjaField
from ninja import Query, Router, Schema, Status

from renkei.core.access import get_restricted_or_404, restrict
from renkei.core.choices import Action
from renkei.core.problems import Problem, invalid_param, problem_response, validation_problem
from renkei.core.schemas import ProblemOut
from renkei.directory.models import Organization, Sector
from renkei.interop import services
from renkei.interop.collection_sharing import administered_organizations
from renkei.interop.misp_import import import_misp_event
from renkei.interop.models import SUBMITTING_TYPES, Collection, IngestStatus
from renkei.interop.schemas import CollectionIn, CollectionOut, IngestStatusOut
from renkei.interop.services import (
    MAX_BUNDLE_BYTES,
    CollectionSettings,
    import_bundle,
    writable_collection_ids,
)
from renkei.interop.stix_validation import BundleRejected
from renkei.sharing.api import service_errors

router = Router(tags=["interoperability"])

STIX_MEDIA_TYPE = "application/stix+json"


class TargetQuery(Schema):
    collection: UUID | None = NinjaField(
        None, description="The collection to store into; by default your organization's own submissions."
    )


def collection_out(collection: Collection, writable: set) -> dict:
    entries = collection.audience_entries.all()
    return {
        "id": collection.id,
        "title": collection.display_title,
        "description": collection.description,
        "owner": collection.owner.name,
        "tlp": collection.tlp,
        "audience": collection.audience,
        "named_audience": {
            "all_ci": any(entry.all_ci for entry in entries),
            "sectors": [entry.sector.code for entry in entries if entry.sector_id],
            "organization_types": [entry.organization_type for entry in entries if entry.organization_type],
        },
        "can_write": collection.pk in writable,
    }


def _readable_collections(request: HttpRequest):
    return restrict(
        Collection.objects.select_related("owner").prefetch_related("audience_entries__sector"), request.user
    )


@router.get("/stix/collections", response={200: list[CollectionOut], 401: ProblemOut})
def collection_list(request: HttpRequest):
    """The collections you may read, which TAXII serves at /taxii2/api/collections/."""
    readable = _readable_collections(request).order_by("created_at")
    writable = writable_collection_ids(request.user)
    return [collection_out(item, writable) for item in readable]


COLLECTION_ANSWERS = {401: ProblemOut, 403: ProblemOut, 404: ProblemOut, 422: ProblemOut}


def _collection_settings(request: HttpRequest, body: CollectionIn) -> CollectionSettings:
    codes = list(dict.fromkeys(body.named_audience.sectors))
    sectors = list(Sector.objects.restrict(request.user).filter(code__in=codes, active=True))
    unknown = set(codes) - {sector.code for sector in sectors}
    if unknown:
        reason = _("Unknown sector code: %(values)s") % {"values": ", ".join(sorted(unknown))}
        raise validation_problem([invalid_param("named_audience.sectors", reason, "body")])
    return CollectionSettings(
        title=body.title,
        description=body.description,
        tlp=body.tlp,
        audience=body.audience,
        all_ci=body.named_audience.all_ci,
        sectors=sectors,
        organization_types=[str(kind) for kind in body.named_audience.organization_types],
    )


def _owner(request: HttpRequest, organization_id: int | None) -> Organization:
    """The organization the new collection belongs to: the one named, or the only one the caller manages."""
    if organization_id is not None:
        owner = Organization.objects.restrict(request.user).filter(pk=organization_id).first()
        if owner is None:
            reason = _("Unknown organization: %(values)s") % {"values": organization_id}
            raise validation_problem([invalid_param("organization", reason, "body")])
        return owner
    managed = list(administered_organizations(request.user).filter(type__in=SUBMITTING_TYPES)[:2])
    if not managed:
        raise Problem(
            403,
            _("Only the organization's officers and administrators may manage its collections and feeds."),
        )
    if len(managed) > 1:
        reason = _("You manage more than one organization: name the one that owns the collection.")
        raise validation_problem([invalid_param("organization", reason, "body")])
    return managed[0]


@router.post("/stix/collections", response={201: CollectionOut, **COLLECTION_ANSWERS})
def collection_create(request: HttpRequest, body: CollectionIn):
    """Create a collection your organization shares objects through (officers and administrators).

    Its objects carry its TLP label and reach its audience: the mandated chain like a report, or the
    sectors and organization types named. TLP:RED and AMBER+STRICT collections never go to whole
    groups, and only CLEAR ones to the public. Your organization's writers add objects to it by
    upload or over TAXII."""
    owner = _owner(request, body.organization)
    settings = _collection_settings(request, body)
    with service_errors(forbidden={"forbidden"}):
        created = services.collection_create(actor=request.user, owner=owner, data=settings)
    found = _readable_collections(request).get(pk=created.pk)
    return Status(201, collection_out(found, writable_collection_ids(request.user)))


@router.put("/stix/collections/{uuid:collection_id}", response={200: CollectionOut, **COLLECTION_ANSWERS})
def collection_change(request: HttpRequest, collection_id: UUID, body: CollectionIn):
    """Change a collection's title, description, label or audience; every object in it is shared the
    new way at once. Submissions collections follow the mandated chain, and a feed's collection is set
    with its feed (422). `organization` is ignored: a collection keeps its owner."""
    collection = get_restricted_or_404(_readable_collections(request), request.user, pk=collection_id)
    settings = _collection_settings(request, body)
    with service_errors(forbidden={"forbidden"}):
        services.collection_update(actor=request.user, collection=collection, data=settings)
    found = _readable_collections(request).get(pk=collection.pk)
    return collection_out(found, writable_collection_ids(request.user))


def status_out(status: IngestStatus) -> dict:
    return {
        "id": status.id,
        "collection": status.collection_id,
        "requested_at": status.requested_at,
        "total_count": status.total_count,
        "success_count": status.success_count,
        "failure_count": status.failure_count,
        "failures": status.failures,
    }


IMPORT_ANSWERS = {
    201: IngestStatusOut,
    400: ProblemOut,
    401: ProblemOut,
    403: ProblemOut,
    404: ProblemOut,
    413: ProblemOut,
    415: ProblemOut,
    422: ProblemOut,
}


def _import(request: HttpRequest, chosen: UUID | None, importer):
    """The shared steps of both imports: the target collection, the right to write it, the size."""
    writable = restrict(Collection.objects.select_related("owner"), request.user, Action.CHANGE)
    if chosen is None:
        collection = writable.filter(is_submissions=True).order_by("owner_id").first()
        if collection is None:
            return problem_response(status=403, detail=_("You may not add objects to any collection."))
    else:
        collection = get_restricted_or_404(
            Collection.objects.select_related("owner"), request.user, pk=chosen
        )
        if not writable.filter(pk=collection.pk).exists():
            return problem_response(status=403, detail=_("You may not add objects to this collection."))
    raw = request.read(MAX_BUNDLE_BYTES + 1)
    if len(raw) > MAX_BUNDLE_BYTES:
        return problem_response(
            status=413,
            title=_("Request body too large"),
            detail=_("A file may be at most %(limit)s.") % {"limit": filesizeformat(MAX_BUNDLE_BYTES)},
        )
    try:
        status = importer(collection, raw, user=request.user)
    except BundleRejected as error:
        return problem_response(status=400, title=_("The file was refused"), detail=str(error))
    return Status(201, status_out(status))


@router.post(
    "/stix/bundles",
    response=IMPORT_ANSWERS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/stix+json": {"schema": {"type": "object"}}},
        }
    },
)
def bundle_import(request: HttpRequest, filters: Query[TargetQuery]):
    """Import a STIX 2.1 bundle (send it as `application/stix+json;version=2.1`).

    Each object is checked on its own: valid ones are stored, invalid ones are listed in `failures`
    with the reason. A bundle that cannot be read at all (not JSON, too large, too deeply nested,
    not a bundle) is refused with 400 or 413 and nothing is stored. Objects keep their ids and
    versions: sending the same version again stores nothing twice, a newer version supersedes.
    """
    return _import(request, filters.collection, import_bundle)


@router.post("/misp/events", response=IMPORT_ANSWERS)
def misp_event_import(request: HttpRequest, filters: Query[TargetQuery]):
    """Import a MISP event in the JSON form PyMISP writes (`{"Event": {…}}` or the event alone).

    The event becomes a STIX `report` with one `indicator` per attribute, ids taken from the MISP
    uuids. Its label is the narrowest of its `tlp:*` tag and its distribution (0 → AMBER+STRICT,
    1 → AMBER, 2 → GREEN, 3 → CLEAR, 4 → AMBER+STRICT); a collection labelled wider than that is
    refused (422), so an event is never shared further than its source allowed. Attributes without
    a STIX equivalent are listed in `failures`.
    """
    return _import(request, filters.collection, import_misp_event)


@router.get(
    "/stix/statuses/{uuid:status_id}", response={200: IngestStatusOut, 401: ProblemOut, 404: ProblemOut}
)
def status_detail(request: HttpRequest, status_id: UUID):
    """The outcome of an import you made."""
    return status_out(get_restricted_or_404(IngestStatus.objects.all(), request.user, pk=status_id))
