""" "Advisories to me": a read-only TAXII collection that every user has, over the advisories they may
see, each exported as the STIX objects `GET /api/v1/advisories/{id}/stix` gives.

It is a view, not a copy: each request reads `Advisory.objects.restrict(user)`, so an advisory shows
up (and disappears) exactly as it does in the user's inbox. Objects are added when their advisory is
issued; pages run over advisories in the order they were issued, so a page ends at an advisory's
last object and may hold fewer objects than `limit` (as TAXII allows).
"""

import datetime as dt
import uuid

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from renkei.sharing.models import Advisory
from renkei.sharing.stix import RENKEI_NAMESPACE, advisory_bundle

ADVISORIES_COLLECTION_ID = uuid.uuid5(RENKEI_NAMESPACE, "taxii/advisories-to-me")


def advisories_collection_resource() -> dict:
    return {
        "id": str(ADVISORIES_COLLECTION_ID),
        "title": _("Advisories to me"),
        "description": _("Every advisory you may see, as STIX reports with their indicators."),
        "can_read": True,
        "can_write": False,
        "media_types": ["application/stix+json;version=2.1"],
    }


def visible_advisories(user, *, added_after: dt.datetime | None, after: tuple | None) -> QuerySet:
    """The user's advisories in the order they were issued, from after `added_after` / the cursor."""
    advisories = (
        Advisory.objects.restrict(user)
        .select_related("issuer")
        .prefetch_related("observables", "issuer__sectors")
        .order_by("created_at", "pk")
    )
    if added_after is not None:
        advisories = advisories.filter(created_at__gt=added_after)
    if after is not None:
        stamp, pk = after
        advisories = advisories.filter(Q(created_at__gt=stamp) | Q(created_at=stamp, pk__gt=pk))
    return advisories


def advisory_objects_page(
    advisories: QuerySet, *, limit: int, keep
) -> tuple[list[tuple[Advisory, dict]], bool]:
    """Whole advisories' objects (those `keep` selects) up to `limit` objects, each with its advisory,
    and whether more advisories follow. A page always holds at least one advisory."""
    page: list[tuple[Advisory, dict]] = []
    for advisory in advisories.iterator(chunk_size=100):
        objects = [(advisory, obj) for obj in advisory_bundle(advisory)["objects"] if keep(obj)]
        if page and len(page) + len(objects) > limit:
            return page, True
        page += objects
    return page, False
