"""`renkei sharing remind|webhook`: reminder runs for cron, and organizations' webhooks."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils.translation import gettext as _

from renkei.core.management.output import command_error, format_table, local, write_json
from renkei.directory.models import Organization
from renkei.sharing.delivery import UpkeepFailed, run_upkeep
from renkei.sharing.models import WebhookEndpoint
from renkei.sharing.webhooks import SIGNATURE_HEADER, webhook_register


class Command(BaseCommand):
    help = _("Information-sharing upkeep: send due reminders, manage organizations' webhooks.")

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)

        remind = actions.add_parser(
            "remind",
            help=_(
                "Send the deadline and acknowledgement reminders that are due, once (run it from cron; "
                "`renkei up` does this by itself)."
            ),
        )
        remind.add_argument(
            "--json", dest="as_json", action="store_true", help=_("Print the result as JSON.")
        )

        webhook = actions.add_parser(
            "webhook", help=_("Manage the webhooks organizations receive advisories on.")
        )
        webhook_actions = webhook.add_subparsers(dest="webhook_action", required=True)
        add = webhook_actions.add_parser(
            "add", help=_("Register a webhook and print its signing secret once.")
        )
        add.add_argument(
            "organization", metavar="ORG_NAME", help=_("The organization's Japanese or English name.")
        )
        add.add_argument("url", metavar="URL", help=_("An http:// or https:// URL."))
        add.add_argument("--json", dest="as_json", action="store_true", help=_("Print the result as JSON."))
        list_ = webhook_actions.add_parser("list", help=_("List webhooks (never their secrets)."))
        list_.add_argument("--json", dest="as_json", action="store_true", help=_("Print the result as JSON."))

    def handle(self, *args, action, **options):
        if action == "remind":
            return self.handle_remind(**options)
        return getattr(self, f"handle_webhook_{options['webhook_action']}")(**options)

    def handle_remind(self, *, as_json, **_options):
        try:
            done, failed = run_upkeep(), []
        except UpkeepFailed as error:
            done, failed = error.done, error.failed
        if as_json:
            write_json(self.stdout, done | ({"failed": failed} if failed else {}))
        elif not failed:
            self.stdout.write(
                _(
                    "Deadline reminders sent: %(deadline)d. Advisories reminded to acknowledge: %(ack)d. "
                    "Expired idempotency keys removed: %(keys)d. TAXII feeds queued for a poll: %(feeds)d. "
                    "Situation proposals opened: %(proposals)d."
                )
                % {
                    "deadline": done["deadline_reminders"],
                    "ack": done["acknowledgement_reminders"],
                    "keys": done["idempotency_keys_purged"],
                    "feeds": done["feeds_queued"],
                    "proposals": done["situation_proposals_opened"],
                }
            )
        if failed:
            raise CommandError(
                _("These upkeep steps failed (see the log): %(steps)s") % {"steps": ", ".join(failed)},
                returncode=1,
            )

    def handle_webhook_add(self, *, organization, url, as_json, **_options):
        matches = list(Organization.objects.filter(Q(name_ja=organization) | Q(name_en=organization))[:2])
        if len(matches) != 1:
            raise CommandError(_("Unknown organization: %(name)s") % {"name": organization})
        try:
            endpoint, secret = webhook_register(actor=None, organization=matches[0], url=url)
        except ValidationError as error:
            raise command_error(error) from None
        if as_json:
            write_json(self.stdout, _endpoint_json(endpoint) | {"secret": secret})
            return
        self.stdout.write(
            _("Webhook %(id)s for %(organization)s: %(url)s")
            % {"id": endpoint.pk, "organization": endpoint.organization.name, "url": endpoint.url}
        )
        self.stdout.write(secret)
        self.stdout.write(
            _(
                "Store this signing secret now: it is not shown again. Each delivery carries the header "
                "'%(header)s: sha256=<HMAC-SHA256 of the body with this secret, in hex>'."
            )
            % {"header": SIGNATURE_HEADER}
        )

    def handle_webhook_list(self, *, as_json, **_options):
        endpoints = WebhookEndpoint.objects.select_related("organization").order_by(
            "organization__name_ja", "pk"
        )
        if as_json:
            write_json(self.stdout, [_endpoint_json(endpoint) for endpoint in endpoints])
            return
        rows = [
            (
                endpoint.pk,
                endpoint.organization.name,
                endpoint.url,
                _("active") if endpoint.active else _("inactive"),
                local(endpoint.created_at),
            )
            for endpoint in endpoints
        ]
        self.stdout.write(
            format_table([_("id"), _("organization"), _("URL"), _("status"), _("created")], rows)
        )


def _endpoint_json(endpoint: WebhookEndpoint) -> dict:
    return {
        "id": endpoint.pk,
        "organization": endpoint.organization.name_ja,
        "url": endpoint.url,
        "active": endpoint.active,
        "created_at": endpoint.created_at.isoformat(),
    }
