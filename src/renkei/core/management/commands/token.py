"""`renkei token create|revoke|list`: API tokens. A token's secret is printed once, at creation."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _

from renkei.core.management.output import command_error, format_table, iso, local, write_json
from renkei.core.models import ApiToken
from renkei.core.services import token_create, token_revoke

DEFAULT_EXPIRY_DAYS = 90


def token_status(token: ApiToken) -> str:
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= timezone.now():
        return "expired"
    return "active"


def _status_label(status: str) -> str:
    return {"active": _("active"), "expired": _("expired"), "revoked": _("revoked")}[status]


def token_json(token: ApiToken) -> dict:
    """Everything about a token except its secret, which Renkei does not have."""
    return {
        "id": token.public_id,
        "user": token.user.get_username(),
        "name": token.name,
        "status": token_status(token),
        "created_at": iso(token.created_at),
        "expires_at": iso(token.expires_at),
        "revoked_at": iso(token.revoked_at),
        "last_used_at": iso(token.last_used_at),
    }


class Command(BaseCommand):
    help = _("Create, revoke and list API tokens.")

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)

        create = actions.add_parser("create", help=_("Create a token for a user and print it once."))
        create.add_argument("username")
        create.add_argument(
            "--expires-days",
            type=int,
            default=DEFAULT_EXPIRY_DAYS,
            metavar="N",
            help=_("Days until the token expires (default: %(default)s)."),
        )
        create.add_argument("--name", default="", help=_("What the token is for, e.g. the script using it."))
        create.add_argument(
            "--json", dest="as_json", action="store_true", help=_("Print the result as JSON.")
        )

        revoke = actions.add_parser("revoke", help=_("Revoke a token at once."))
        revoke.add_argument("token_id", metavar="TOKEN_ID", help=_("The token's id, e.g. tok_0123456789ab."))
        revoke.add_argument(
            "--json", dest="as_json", action="store_true", help=_("Print the result as JSON.")
        )

        list_ = actions.add_parser("list", help=_("List tokens (never their secrets)."))
        list_.add_argument("username", nargs="?", help=_("Only this user's tokens."))
        list_.add_argument("--json", dest="as_json", action="store_true", help=_("Print the result as JSON."))

    def handle(self, *args, action, **options):
        return getattr(self, f"handle_{action}")(**options)

    def _user(self, username: str):
        try:
            return get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(_("Unknown user: %(username)s") % {"username": username}) from None

    def handle_create(self, *, username, expires_days, name, as_json, **_options):
        user = self._user(username)
        if not user.is_active:
            raise CommandError(_("The user %(username)s is inactive.") % {"username": username})
        try:
            token, secret = token_create(actor=None, user=user, name=name, expires_days=expires_days)
        except ValidationError as error:
            raise command_error(error) from None
        if as_json:
            write_json(self.stdout, token_json(token) | {"token": secret})
            return
        self.stdout.write(
            _("Token %(id)s for %(username)s, valid until %(expires)s:")
            % {"id": token.public_id, "username": username, "expires": local(token.expires_at)}
        )
        self.stdout.write(secret)
        self.stdout.write(
            _(
                "Store it now: Renkei keeps only its hash and cannot show it again. Send it as the header "
                "'Authorization: Bearer <token>'."
            )
        )

    def handle_revoke(self, *, token_id, as_json, **_options):
        token = ApiToken.objects.select_related("user").filter(public_id=token_id).first()
        if token is None:
            raise CommandError(_("Unknown token: %(id)s") % {"id": token_id})
        already_revoked = token.revoked_at is not None
        token = token_revoke(actor=None, token=token)
        if as_json:
            write_json(self.stdout, token_json(token) | {"already_revoked": already_revoked})
        elif already_revoked:
            self.stdout.write(
                _("Token %(id)s was already revoked at %(at)s.")
                % {"id": token.public_id, "at": local(token.revoked_at)}
            )
        else:
            self.stdout.write(_("Revoked token %(id)s.") % {"id": token.public_id})

    def handle_list(self, *, username, as_json, **_options):
        tokens = ApiToken.objects.select_related("user").order_by("user__username", "-created_at")
        if username:
            tokens = tokens.filter(user=self._user(username))
        if as_json:
            write_json(self.stdout, [token_json(token) for token in tokens])
            return
        rows = [
            (
                token.public_id,
                token.user.get_username(),
                token.name,
                _status_label(token_status(token)),
                local(token.created_at),
                local(token.expires_at),
                local(token.last_used_at),
            )
            for token in tokens
        ]
        headers = [_("id"), _("user"), _("name"), _("status"), _("created"), _("expires"), _("last used")]
        self.stdout.write(format_table(headers, rows))
