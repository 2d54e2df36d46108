"""Read-only TAXII collections that every user has, over what they may already see in Renkei:
"Advisories to me", "Reports shared with my organization" and "Anonymized reports for my sector",
each item exported as the STIX objects its API export gives (`GET /api/v1/…/stix`).

They are views, not copies: each request reads the model through the access function, so an item
shows up (and disappears) exactly as it does in the web interface. An item's objects are "added"
when it was issued, or for reports when they last changed (an update brings the report's objects
again, at their new version); pages run over items in that order, so a page ends at an item's last
object and may hold fewer objects than `limit` (as TAXII allows).
"""

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from renkei.sharing.models import Advisory, AnonymizedReport, Report
from renkei.sharing.stix import RENKEI_NAMESPACE, advisory_bundle, anonymized_report_bundle, report_bundle


@dataclass(frozen=True)
class ViewCollection:
    name: str  # stable: the collection's id is derived from it
    title: Promise
    description: Promise
    items: Callable[[object], QuerySet]  # the user's items, read through the access function
    stamp: str  # the field that says when an item's objects were added
    bundle: Callable[[object], dict]

    @property
    def id(self) -> uuid.UUID:
        return uuid.uuid5(RENKEI_NAMESPACE, f"taxii/{self.name}")

    def resource(self) -> dict:
        return {
            "id": str(self.id),
            "title": str(self.title),
            "description": str(self.description),
            "can_read": True,
            "can_write": False,
            "media_types": ["application/stix+json;version=2.1"],
        }

    def added(self, item) -> dt.datetime:
        return getattr(item, self.stamp)

    def visible(self, user, *, added_after: dt.datetime | None, after: tuple | None) -> QuerySet:
        """The user's items in the order their objects were added, from after `added_after` / the cursor."""
        items = self.items(user).order_by(self.stamp, "pk")
        if added_after is not None:
            items = items.filter(**{f"{self.stamp}__gt": added_after})
        if after is not None:
            stamp, pk = after
            items = items.filter(Q(**{f"{self.stamp}__gt": stamp}) | Q(**{self.stamp: stamp, "pk__gt": pk}))
        return items

    def objects_page(self, items: QuerySet, *, limit: int, keep) -> tuple[list[tuple[object, dict]], bool]:
        """Whole items' objects (those `keep` selects) up to `limit` objects, each with its item, and
        whether more items follow. A page always holds at least one item."""
        page: list[tuple[object, dict]] = []
        for item in items.iterator(chunk_size=100):
            objects = [(item, obj) for obj in self.bundle(item)["objects"] if keep(obj)]
            if page and len(page) + len(objects) > limit:
                return page, True
            page += objects
        return page, False


ADVISORIES = ViewCollection(
    name="advisories-to-me",
    title=_("Advisories to me"),
    description=_("Every advisory you may see, as STIX reports with their indicators."),
    items=lambda user: (
        Advisory.objects.restrict(user)
        .select_related("issuer")
        .prefetch_related("observables", "issuer__sectors")
    ),
    stamp="created_at",
    bundle=advisory_bundle,
)
REPORTS = ViewCollection(
    name="reports-shared-with-me",
    title=_("Reports shared with my organization"),
    description=_(
        "Every incident report you may see, as STIX incidents and reports with their indicators and "
        "observed data, again at their new version whenever a report changes."
    ),
    items=lambda user: (
        Report.objects.restrict(user)
        .select_related("organization", "sector", "cause")
        .prefetch_related("versions__observables", "organization__sectors")
    ),
    stamp="updated_at",
    bundle=report_bundle,
)
ANONYMIZED_REPORTS = ViewCollection(
    name="anonymized-reports-for-me",
    title=_("Anonymized reports for my sector"),
    description=_("Every anonymized cross-sector copy you may see, without its source."),
    items=lambda user: (
        AnonymizedReport.objects.restrict(user)
        .select_related("sector", "cause")
        .prefetch_related("observables")
    ),
    stamp="created_at",
    bundle=anonymized_report_bundle,
)
VIEW_COLLECTIONS = {collection.id: collection for collection in (ADVISORIES, REPORTS, ANONYMIZED_REPORTS)}
