"""TAXII feeds in the web interface: their settings and runs belong to the administrators of the
organization they import for; everyone else gets the same 404 as for a feed that does not exist."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import OuterRef, Subquery
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from renkei.core.access import get_restricted_or_404, restrict
from renkei.core.choices import Action
from renkei.interop.collection_forms import FeedForm, saved_through_form
from renkei.interop.collection_sharing import administered_organizations
from renkei.interop.feeds import feed_create as create_feed
from renkei.interop.feeds import feed_poll as poll_feed
from renkei.interop.feeds import feed_update
from renkei.interop.models import FeedRun, TaxiiFeed

RUNS_SHOWN = 50


@login_required
def feed_list(request):
    latest = FeedRun.objects.filter(feed=OuterRef("pk")).order_by("-started_at")
    feeds = restrict(TaxiiFeed.objects.select_related("collection__owner"), request.user).annotate(
        last_run_at=Subquery(latest.values("started_at")[:1]),
        last_error=Subquery(latest.values("error")[:1]),
    )
    context = {
        "feeds": feeds,
        "can_create": administered_organizations(request.user).exists(),
        "nav_section": "exchange",
    }
    return render(request, "interop/feed_list.html", context)


@login_required
def feed_create(request):
    organizations = administered_organizations(request.user)
    if not organizations.exists():
        raise Http404(_("Not found."))
    form = FeedForm(request.POST or None, user=request.user, organizations=organizations)
    feed = request.method == "POST" and saved_through_form(
        form, lambda data: create_feed(actor=request.user, owner=form.cleaned_data["organization"], data=data)
    )
    if feed:
        messages.success(request, _("The feed has been registered; its first poll is due now."))
        return redirect("interop:feed_detail", feed.pk)
    return render(request, "interop/feed_form.html", {"form": form, "feed": None, "nav_section": "exchange"})


@login_required
def feed_edit(request, feed_id):
    feed = get_restricted_or_404(
        TaxiiFeed.objects.select_related("collection"), request.user, Action.CHANGE, pk=feed_id
    )
    form = FeedForm(request.POST or None, user=request.user, feed=feed)
    saved = request.method == "POST" and saved_through_form(
        form, lambda data: feed_update(actor=request.user, feed=feed, data=data)
    )
    if saved:
        messages.success(request, _("The feed's settings have been saved."))
        return redirect("interop:feed_detail", feed.pk)
    return render(request, "interop/feed_form.html", {"form": form, "feed": feed, "nav_section": "exchange"})


@login_required
def feed_detail(request, feed_id):
    feed = get_restricted_or_404(
        TaxiiFeed.objects.select_related("collection__owner", "created_by"), request.user, pk=feed_id
    )
    context = {
        "feed": feed,
        "audience_entries": feed.collection.audience_entries.select_related("sector"),
        "runs": feed.runs.all()[:RUNS_SHOWN],
        "can_change": restrict(TaxiiFeed.objects.filter(pk=feed.pk), request.user, Action.CHANGE).exists(),
        "nav_section": "exchange",
    }
    return render(request, "interop/feed_detail.html", context)


@login_required
@require_POST
def feed_poll(request, feed_id):
    """Poll now, while the administrator waits: the page then shows the run."""
    feed = get_restricted_or_404(TaxiiFeed.objects.all(), request.user, Action.CHANGE, pk=feed_id)
    run = poll_feed(feed)
    if run.error:
        messages.error(request, _("The poll failed: %(error)s") % {"error": run.error})
    else:
        messages.success(
            request,
            _("Polled: %(fetched)d objects fetched, %(created)d stored, %(rejected)d rejected.")
            % {"fetched": run.fetched, "created": run.created, "rejected": run.rejected},
        )
    return redirect("interop:feed_detail", feed.pk)
