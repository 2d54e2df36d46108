"""`renkei user add|list`: people and their roles from the command line."""

import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from renkei.core.management.output import command_error, format_table, write_json
from renkei.directory.choices import Language, Role
from renkei.directory.models import User
from renkei.directory.services import organization_by_name, user_create


def user_json(user: User) -> dict:
    return {
        "id": user.pk,
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "language": user.language,
        "active": user.is_active,
        "has_password": user.has_usable_password(),
        "memberships": [
            {
                "organization": {"id": m.organization_id, "name_ja": m.organization.name_ja},
                "role": m.role,
            }
            for m in user.memberships.all()
        ],
    }


class Command(BaseCommand):
    help = _("Add and list people.")
    # Tests hand in the password on a stream of their own instead of the process's stdin.
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)

        add = actions.add_parser("add", help=_("Add a person with a role in an organization."))
        add.add_argument("username")
        add.add_argument(
            "--org", required=True, metavar="NAME", help=_("Organization, Japanese or English name.")
        )
        add.add_argument("--role", required=True, choices=Role.values, help=_("Role in the organization."))
        add.add_argument("--email", default="", help=_("E-mail address; a welcome e-mail is sent to it."))
        add.add_argument("--display-name", default="", help=_("Name shown to other people."))
        add.add_argument("--language", default="", choices=Language.values, help=_("Preferred language."))
        add.add_argument(
            "--password-stdin",
            action="store_true",
            help=_(
                "Read the password from the first line of standard input (otherwise the account has none)."
            ),
        )
        add.add_argument("--json", dest="as_json", action="store_true", help=_("Print the result as JSON."))

        list_ = actions.add_parser("list", help=_("List people."))
        list_.add_argument("--org", metavar="NAME", help=_("Only members of this organization."))
        list_.add_argument("--json", dest="as_json", action="store_true", help=_("Print the result as JSON."))

    def handle(self, *args, action, **options):
        return getattr(self, f"handle_{action}")(**options)

    def handle_add(
        self, *, username, org, role, email, display_name, language, password_stdin, as_json, **options
    ):
        password = None
        if password_stdin:
            stream = options.get("stdin") or sys.stdin
            password = stream.readline().rstrip("\r\n")
            if not password:
                raise CommandError(_("--password-stdin was given, but standard input held no password."))
        try:
            user = user_create(
                actor=None,
                username=username,
                organization=organization_by_name(org),
                role=role,
                email=email,
                password=password,
                display_name=display_name,
                language=language,
            )
        except ValidationError as error:
            raise command_error(error) from None
        if as_json:
            write_json(self.stdout, user_json(user))
            return
        membership = user.memberships.select_related("organization").get()
        self.stdout.write(
            _("Created user %(username)s (#%(id)d): %(role)s in %(organization)s")
            % {
                "username": user.username,
                "id": user.pk,
                "role": membership.get_role_display(),
                "organization": membership.organization.name_ja,
            }
        )
        if not user.has_usable_password():
            self.stdout.write(
                _("The account has no password yet; set one with: renkei changepassword %(username)s")
                % {"username": user.username}
            )

    def handle_list(self, *, org, as_json, **_options):
        users = User.objects.prefetch_related("memberships__organization")
        if org:
            try:
                organization = organization_by_name(org)
            except ValidationError as error:
                raise command_error(error) from None
            users = users.filter(memberships__organization=organization).distinct()
        if as_json:
            write_json(self.stdout, [user_json(user) for user in users])
            return
        rows = [
            (
                user.username,
                user.display_name,
                "; ".join(f"{m.organization.name_ja} ({m.role})" for m in user.memberships.all()),
                "" if user.is_active else _("inactive"),
            )
            for user in users
        ]
        self.stdout.write(format_table([_("username"), _("name"), _("roles"), ""], rows))
