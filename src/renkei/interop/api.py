"""STIX bundles over the JSON API: upload into a collection, read the outcome, list collections."""

from uuid import UUID

from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from ninja import Field as NinjaField
from ninja import Query, Router, Schema, Status

from renkei.core.access import get_restricted_or_404, restrict
from renkei.core.choices import Action
from renkei.core.problems import problem_response
from renkei.core.schemas import ProblemOut
from renkei.interop.misp_import import import_misp_event
from renkei.interop.models import Collection, IngestStatus
from renkei.interop.schemas import CollectionOut, IngestStatusOut
from renkei.interop.services import MAX_BUNDLE_BYTES, import_bundle, writable_collection_ids
from renkei.interop.stix_validation import BundleRejected

router = Router(tags=["interoperability"])

STIX_MEDIA_TYPE = "application/stix+json"


class TargetQuery(Schema):
    collection: UUID | None = NinjaField(
        None, description="The collection to store into; by default your organization's own submissions."
    )


def collection_out(collection: Collection, writable: set) -> dict:
    return {
        "id": collection.id,
        "title": collection.display_title,
        "description": collection.description,
        "owner": collection.owner.name,
        "tlp": collection.tlp,
        "audience": collection.audience,
        "can_write": collection.pk in writable,
    }


@router.get("/stix/collections", response={200: list[CollectionOut], 401: ProblemOut})
def collection_list(request: HttpRequest):
    """The collections you may read, which TAXII serves at /taxii2/api/collections/."""
    readable = restrict(Collection.objects.select_related("owner"), request.user).order_by("created_at")
    writable = writable_collection_ids(request.user)
    return [collection_out(item, writable) for item in readable]


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
