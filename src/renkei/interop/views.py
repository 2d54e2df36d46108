"""Collections, their STIX objects and bundle uploads in the web interface.

Every page reads through the access function: a collection or object the user may not see is the
same 404 as one that does not exist, and TAXII serves exactly what these pages show.
"""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from renkei.core.access import get_restricted_or_404, restrict
from renkei.correlation.choices import SourceKind
from renkei.correlation.services import seen_elsewhere
from renkei.interop.collection_forms import CollectionForm, saved_through_form
from renkei.interop.collection_sharing import administered_organizations
from renkei.interop.forms import BundleUploadForm, UploadFormat
from renkei.interop.misp_import import import_misp_event
from renkei.interop.models import SUBMITTING_TYPES, Collection, IngestStatus, StixObject
from renkei.interop.services import collection_create as create_collection
from renkei.interop.services import collection_update, import_bundle, writable_collection_ids
from renkei.interop.stix_validation import BundleRejected

PAGE_SIZE = 50


@login_required
def collection_list(request):
    readable = restrict(Collection.objects.select_related("owner"), request.user).order_by("created_at")
    context = {
        "collections": readable,
        "writable": writable_collection_ids(request.user),
        "can_create": administered_organizations(request.user).filter(type__in=SUBMITTING_TYPES).exists(),
        "taxii_url": request.build_absolute_uri("/taxii2/"),
        "nav_section": "exchange",
    }
    return render(request, "interop/collection_list.html", context)


def _managed(collection: Collection, user) -> bool:
    """Whether the user sets this collection's sharing here (submissions and feeds' are set elsewhere)."""
    return (
        not collection.is_submissions
        and not hasattr(collection, "feed")
        and administered_organizations(user).filter(pk=collection.owner_id).exists()
    )


@login_required
def collection_create(request):
    organizations = administered_organizations(request.user).filter(type__in=SUBMITTING_TYPES)
    if not organizations.exists():
        raise Http404(_("Not found."))
    form = CollectionForm(request.POST or None, user=request.user, organizations=organizations)
    collection = request.method == "POST" and saved_through_form(
        form,
        lambda data: create_collection(
            actor=request.user, owner=form.cleaned_data["organization"], data=data
        ),
    )
    if collection:
        messages.success(request, _("The collection has been created."))
        return redirect("interop:collection_detail", collection.pk)
    context = {"form": form, "collection": None, "nav_section": "exchange"}
    return render(request, "interop/collection_form.html", context)


@login_required
def collection_edit(request, collection_id):
    collection = get_restricted_or_404(
        Collection.objects.select_related("owner"), request.user, pk=collection_id
    )
    if not _managed(collection, request.user):
        raise Http404(_("Not found."))
    form = CollectionForm(request.POST or None, user=request.user, collection=collection)
    saved = request.method == "POST" and saved_through_form(
        form, lambda data: collection_update(actor=request.user, collection=collection, data=data)
    )
    if saved:
        messages.success(request, _("The collection's settings have been saved."))
        return redirect("interop:collection_detail", collection.pk)
    context = {"form": form, "collection": collection, "nav_section": "exchange"}
    return render(request, "interop/collection_form.html", context)


@login_required
def collection_detail(request, collection_id):
    collection = get_restricted_or_404(
        Collection.objects.select_related("owner"), request.user, pk=collection_id
    )
    newest = restrict(StixObject.objects.filter(collection=collection, is_latest=True), request.user)
    chosen_type = request.GET.get("type", "")
    if chosen_type:
        newest = newest.filter(type=chosen_type)
    page = Paginator(
        newest.order_by("-date_added", "-pk").only("pk", "stix_id", "type", "version", "date_added", "body"),
        PAGE_SIZE,
    ).get_page(request.GET.get("page"))
    context = {
        "collection": collection,
        "page": page,
        "rows": [(row, _object_name(row)) for row in page],
        "chosen_type": chosen_type,
        "query": f"type={chosen_type}" if chosen_type else "",
        "can_write": collection.pk in writable_collection_ids(request.user),
        "can_manage": _managed(collection, request.user),
        "form": BundleUploadForm(),
        "nav_section": "exchange",
    }
    return render(request, "interop/collection_detail.html", context)


def _object_name(row: StixObject) -> str:
    body = json.loads(row.body)
    return body.get("name") or body.get("value") or body.get("pattern") or ""


@login_required
def object_detail(request, object_pk):
    found = get_restricted_or_404(
        StixObject.objects.select_related("collection__owner"), request.user, pk=object_pk
    )
    versions = restrict(
        StixObject.objects.filter(collection=found.collection, stix_id=found.stix_id), request.user
    ).order_by("-version")
    context = {
        "object": found,
        "pretty": json.dumps(json.loads(found.body), indent=2, ensure_ascii=False),
        "versions": versions.only("pk", "version", "date_added", "is_latest"),
        "seen_elsewhere": seen_elsewhere(SourceKind.STIX, found.pk, request.user),
        "nav_section": "exchange",
    }
    return render(request, "interop/object_detail.html", context)


@login_required
@require_POST
def bundle_upload(request, collection_id):
    collection = get_restricted_or_404(
        Collection.objects.select_related("owner"), request.user, pk=collection_id
    )
    if collection.pk not in writable_collection_ids(request.user):
        messages.error(request, _("You may not add objects to this collection."))
        return redirect("interop:collection_detail", collection.pk)
    form = BundleUploadForm(request.POST, request.FILES)
    if form.is_valid():
        importer = import_misp_event if form.cleaned_data["format"] == UploadFormat.MISP else import_bundle
        try:
            status = importer(collection, form.cleaned_data["bundle"].read(), user=request.user)
        except BundleRejected as error:
            form.add_error("bundle", _("The file was refused: %(reason)s") % {"reason": error})
        except ValidationError as error:
            form.add_error("bundle", error)
        else:
            return redirect("interop:status_detail", status.pk)
    context = {
        "collection": collection,
        "form": form,
        "page": None,
        "rows": [],
        "can_write": True,
        "nav_section": "exchange",
    }
    return render(request, "interop/collection_detail.html", context, status=400)


@login_required
def status_detail(request, status_id):
    status = get_restricted_or_404(
        IngestStatus.objects.select_related("collection"), request.user, pk=status_id
    )
    return render(request, "interop/status_detail.html", {"status": status, "nav_section": "exchange"})
