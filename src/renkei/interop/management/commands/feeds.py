"""`renkei feeds poll`: poll TAXII feeds now, one or every one that is due, and print what each stored."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from renkei.core.management.output import format_table, iso, write_json
from renkei.interop.feeds import feed_poll, feeds_due
from renkei.interop.models import FeedRun, TaxiiFeed


class Command(BaseCommand):
    help = _("TAXII feeds: poll remote collections into Renkei's.")

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        poll = actions.add_parser(
            "poll",
            help=_("Poll one feed, or every active feed that is due, now (`renkei up` does this by itself)."),
        )
        which = poll.add_mutually_exclusive_group(required=True)
        which.add_argument("feed_id", nargs="?", metavar="FEED_ID", help=_("The feed's id."))
        which.add_argument("--all-due", action="store_true", help=_("Every active feed whose poll is due."))
        poll.add_argument("--json", dest="as_json", action="store_true", help=_("Print the result as JSON."))

    def handle(self, *args, action, feed_id, all_due, as_json, **options):
        if all_due:
            feeds = feeds_due()
        else:
            try:
                feeds = [TaxiiFeed.objects.get(pk=feed_id)]
            except (TaxiiFeed.DoesNotExist, ValidationError):
                raise CommandError(_("Unknown feed: %(id)s") % {"id": feed_id}) from None
        runs = [feed_poll(feed) for feed in feeds]
        if as_json:
            write_json(self.stdout, [_run_json(run) for run in runs])
        else:
            rows = [
                (run.feed.name, run.fetched, run.created, run.rejected, run.error or _("done"))
                for run in runs
            ]
            self.stdout.write(
                format_table([_("feed"), _("fetched"), _("stored"), _("rejected"), _("outcome")], rows)
            )
        if any(run.error for run in runs):
            raise CommandError(_("Some polls failed (see above)."), returncode=1)


def _run_json(run: FeedRun) -> dict:
    return {
        "feed": str(run.feed_id),
        "name": run.feed.name,
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "fetched": run.fetched,
        "created": run.created,
        "rejected": run.rejected,
        "failures": run.failures,
        "error": run.error,
    }
