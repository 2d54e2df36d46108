"""`renkei demo [--reset] [--otp USERNAME]`: the fictitious demo community and its sample reports and
advisories (see docs/cli.md)."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.translation import gettext as _

from renkei.core.management.output import command_error, format_table
from renkei.directory.choices import TWO_FACTOR_ORGANIZATION_TYPES
from renkei.directory.demo import (
    DEMO_PASSWORD,
    DEMO_TOTP_KEY_BASE32,
    EXAMPLE_LOGINS,
    demo_load,
    demo_otp,
)
from renkei.directory.models import User
from renkei.interop.demo import sample_stix_load
from renkei.sharing.demo import SampleContentResult, sample_content_load


class Command(BaseCommand):
    help = _(
        "Load the reference data and a fictitious demo community: operators in every sector, vendors, "
        "a partner, a user for every role in every organization, and sample reports and advisories. "
        "Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset",
            action="store_true",
            help=_(
                "First remove the demo's users and organizations (those that history refers to are "
                "deactivated and renamed instead), then load them afresh."
            ),
        )
        parser.add_argument(
            "--otp",
            metavar="USERNAME",
            help=_("Only print the current two-factor code of a demo user, e.g. nco-coordinator."),
        )

    def handle(self, *args, reset, otp, verbosity, **options):
        if otp:
            self._print_otp(otp)
            return
        try:
            # One transaction: the community and its sample content load together, or not at all.
            with transaction.atomic():
                result = demo_load(reset=reset)
                content = sample_content_load()
                sample_stix_load()
        except ValidationError as error:
            raise command_error(error) from None
        if verbosity == 0:
            return
        if reset:
            self.stdout.write(
                _(
                    "Removed the previous demo: %(deleted)d users deleted, %(retired)d deactivated "
                    "(the audit trail refers to them); %(orgs_deleted)d organizations deleted, "
                    "%(orgs_retired)d deactivated."
                )
                % {
                    "deleted": result.users_deleted,
                    "retired": result.users_retired,
                    "orgs_deleted": result.organizations_deleted,
                    "orgs_retired": result.organizations_retired,
                }
            )
        if result.changed:
            self.stdout.write(
                _(
                    "Demo community loaded: %(orgs)d organizations and %(users)d users created, "
                    "%(devices)d two-factor devices set up."
                )
                % {
                    "orgs": result.organizations_created,
                    "users": result.users_created,
                    "devices": result.devices_created,
                }
            )
        else:
            self.stdout.write(_("The demo community is already complete; nothing changed."))
        self._print_content(content)
        self._print_logins()

    def _print_content(self, content: SampleContentResult) -> None:
        if content.changed:
            self.stdout.write(
                _(
                    "Sample content added: %(reports)d reports with %(versions)d later versions and "
                    "%(comments)d questions and answers, %(copies)d anonymized copies, %(advisories)d "
                    "advisories and %(acks)d acknowledgements."
                )
                % {
                    "reports": content.reports_created,
                    "versions": content.versions_added,
                    "comments": content.comments_created,
                    "copies": content.copies_created,
                    "advisories": content.advisories_created,
                    "acks": content.acknowledgements_created,
                }
            )
        else:
            self.stdout.write(_("The sample reports and advisories are already in place; nothing changed."))
        for item in content.skipped:
            self.stderr.write(_("Sample content left out: %(item)s") % {"item": item})

    def _print_otp(self, username: str) -> None:
        try:
            code, remaining = demo_otp(username)
        except ValidationError as error:
            raise command_error(error) from None
        self.stdout.write(code)
        self.stderr.write(
            _("Valid for %(seconds)d more seconds; each code can be used once.") % {"seconds": remaining}
        )

    def _print_logins(self) -> None:
        users = {
            user.username: user
            for user in User.objects.filter(username__in=EXAMPLE_LOGINS).prefetch_related(
                "memberships__organization"
            )
        }
        rows = []
        for username in EXAMPLE_LOGINS:
            user = users.get(username)
            if user is None:
                continue
            membership = user.memberships.all()[0]
            two_factor = membership.organization.type in TWO_FACTOR_ORGANIZATION_TYPES
            rows.append(
                (
                    username,
                    membership.organization.name,
                    membership.get_role_display(),
                    _("yes") if two_factor else "",
                )
            )
        self.stdout.write("")
        self.stdout.write(
            _("Every demo user signs in with the password: %(password)s") % {"password": DEMO_PASSWORD}
        )
        self.stdout.write(
            _(
                "Usernames are <organization>-<role> (roles: reporter, officer, coordinator, analyst, "
                "executive, org_admin). For example:"
            )
        )
        self.stdout.write(format_table([_("username"), _("organization"), _("role"), _("2FA")], rows))
        self.stdout.write("")
        self.stdout.write(
            _(
                "Two-factor sign-in: national-centre and ministry users (nco-*, fsa-*, mic-*, mhlw-*, "
                "meti-*, mlit-*, moe-*, mofa-*, digital-*) share one TOTP key, %(key)s. Add it to an "
                "authenticator app, or print the current code with: renkei demo --otp nco-coordinator"
            )
            % {"key": DEMO_TOTP_KEY_BASE32}
        )
        self.stdout.write(
            _(
                "Sample reports and advisories: nco-coordinator sees every report and the dashboard, "
                "fsa-coordinator the finance reports, finance-op1-reporter its bank's report and an inbox "
                "of advisories."
            )
        )
        self.stdout.write(_("All organizations and usernames: docs/cli.md"))
