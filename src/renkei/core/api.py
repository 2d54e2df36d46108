"""API authentication, pagination, and `GET /me`.

Two ways in: an API token (`Authorization: Bearer rk_…`) for scripts and other systems, and the web
session for the interface's own calls. Sessions must pass the same two-factor rule as web pages, and
their unsafe requests must carry the CSRF token.
"""

from django.conf import settings
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext as _
from ninja import Router
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from renkei.core.middleware import must_pass_two_factor, preferred_language
from renkei.core.problems import WWW_AUTHENTICATE, Problem, ProblemType
from renkei.core.schemas import MeOut, PageQuery, ProblemOut
from renkei.core.services import token_authenticate
from renkei.directory.models import Membership, Sector


class BearerTokenAuth(HttpBearer):
    """`Authorization: Bearer <token>` with a token from `renkei token create`."""

    def __call__(self, request: HttpRequest):
        scheme, _space, secret = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            # No token, or another scheme (e.g. Basic auth of a proxy in front): try the session.
            return None
        return self.authenticate(request, secret.strip())

    def authenticate(self, request: HttpRequest, token: str):
        api_token = token_authenticate(token)
        if api_token is None:
            # A client that sent a token wants it checked: never fall back to a session cookie.
            raise Problem(
                401,
                _("The API token is unknown, expired or revoked."),
                type=ProblemType.INVALID_TOKEN,
                headers={"WWW-Authenticate": f'{WWW_AUTHENTICATE}, error="invalid_token"'},
            )
        user = api_token.user
        request.user = user
        request.api_token = api_token
        # The language middleware ran before the user was known; answer in the user's language now.
        request.LANGUAGE_CODE = preferred_language(request)
        translation.activate(request.LANGUAGE_CODE)
        return user


class SessionAuth(APIKeyCookie):
    """The web interface's session, with CSRF on unsafe methods and the two-factor rule."""

    param_name = settings.SESSION_COOKIE_NAME

    def _get_key(self, request: HttpRequest) -> str | None:
        # ninja's cookie auth checks CSRF before knowing whether there is a session at all; we check
        # it in `authenticate`, so a request with neither token nor session gets a plain 401.
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request: HttpRequest, key: str | None):
        user = request.user
        if not user.is_authenticated:
            return None
        if check_csrf(request) is not None:
            raise Problem(
                403,
                _("The CSRF token is missing or wrong. Send the X-CSRFToken header with session requests."),
                type=ProblemType.CSRF_FAILED,
            )
        if must_pass_two_factor(user) and not user.is_verified():
            raise Problem(
                401,
                _(
                    "Your account requires two-factor authentication. "
                    "Enter your code in the web interface first."
                ),
                type=ProblemType.TWO_FACTOR_REQUIRED,
            )
        return user


def paginate(request: HttpRequest, queryset: QuerySet, page: PageQuery) -> dict:
    """One page of an ordered queryset as `{items, count, next}`; `next` is the following page's URL."""
    count = queryset.count()
    items = list(queryset[page.offset : page.offset + page.limit])
    next_url = None
    if page.offset + page.limit < count:
        params = request.GET.copy()
        params["offset"] = str(page.offset + page.limit)
        params["limit"] = str(page.limit)
        next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
    return {"items": items, "count": count, "next": next_url}


router = Router(tags=["me"])


@router.get("/me", response={200: MeOut, 401: ProblemOut}, summary="The signed-in user")
def me(request: HttpRequest):
    """The user behind the token or session, their organizations and roles in each."""
    user = request.auth
    memberships = (
        Membership.objects.filter(user=user, organization__active=True)
        .select_related("organization")
        .prefetch_related(Prefetch("organization__sectors", queryset=Sector.objects.only("code")))
        .order_by("organization__type", "organization__name_ja", "role")
    )
    organizations: dict[int, dict] = {}
    for membership in memberships:
        organization = membership.organization
        entry = organizations.setdefault(
            organization.pk,
            {
                "id": organization.pk,
                "name_ja": organization.name_ja,
                "name_en": organization.name_en,
                "type": organization.type,
                "sectors": [sector.code for sector in organization.sectors.all()],
                "roles": [],
            },
        )
        entry["roles"].append(membership.role)
    return {
        "user": {
            "id": user.pk,
            "username": user.username,
            "display_name": user.display_name,
            "email": user.email,
            "language": user.language or None,
        },
        "organizations": list(organizations.values()),
        "two_factor_required": must_pass_two_factor(user),
    }
