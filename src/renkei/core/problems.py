"""RFC 7807 problem details: every error the API returns has the same shape.

    {"type": "about:blank", "title": "Not found", "status": 404, "detail": "…"}

Validation errors (422) add `invalid_params`, one entry per invalid field. Titles and details are
translated into the request's language; `type` is a stable identifier clients may branch on.
"""

import logging
from collections.abc import Iterable

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"


class ProblemType:
    """The `type` member: `about:blank` when the status code says it all (RFC 7807 §4.2)."""

    BLANK = "about:blank"
    VALIDATION = "urn:renkei:problem:validation"
    INVALID_TOKEN = "urn:renkei:problem:invalid-token"  # noqa: S105 (an identifier, not a secret)
    TWO_FACTOR_REQUIRED = "urn:renkei:problem:two-factor-required"
    CSRF_FAILED = "urn:renkei:problem:csrf-failed"


STATUS_TITLES = {
    400: gettext_lazy("Bad request"),
    401: gettext_lazy("Authentication required"),
    403: gettext_lazy("Forbidden"),
    404: gettext_lazy("Not found"),
    405: gettext_lazy("Method not allowed"),
    422: gettext_lazy("Invalid request"),
    429: gettext_lazy("Too many requests"),
    500: gettext_lazy("Server error"),
}

# ninja's own error messages are English constants, so each status gets a translated detail.
STATUS_DETAILS = {
    400: gettext_lazy("The request could not be read. Check that its body is valid JSON."),
    401: gettext_lazy(
        "Send an API token as “Authorization: Bearer <token>”, or sign in to the web interface."
    ),
    403: gettext_lazy("You may not do this."),
    404: gettext_lazy("There is nothing here, or you may not see it."),
    405: gettext_lazy("This address does not accept the %(method)s method."),
    422: gettext_lazy("Some parameters are invalid; see invalid_params."),
    429: gettext_lazy("Too many requests; try again later."),
    500: gettext_lazy("Something went wrong on our side. The error has been logged."),
}

# Reasons for pydantic's error types, translated; anything else falls back to pydantic's message.
VALIDATION_REASONS = {
    "missing": gettext_lazy("This field is required."),
    "int_parsing": gettext_lazy("Enter a whole number."),
    "int_type": gettext_lazy("Enter a whole number."),
    "greater_than_equal": gettext_lazy("Must be at least %(ge)s."),
    "less_than_equal": gettext_lazy("Must be at most %(le)s."),
    "greater_than": gettext_lazy("Must be more than %(gt)s."),
    "less_than": gettext_lazy("Must be less than %(lt)s."),
    "string_too_long": gettext_lazy("At most %(max_length)s characters."),
    "string_too_short": gettext_lazy("At least %(min_length)s characters."),
    "enum": gettext_lazy("Must be one of: %(expected)s."),
    "literal_error": gettext_lazy("Must be one of: %(expected)s."),
    "bool_parsing": gettext_lazy("Enter true or false."),
    "json_invalid": gettext_lazy("This is not valid JSON."),
}


class Problem(Exception):
    """Raise to answer with problem details; API code needs no response plumbing of its own."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type: str = ProblemType.BLANK,
        title: str | None = None,
        invalid_params: list[dict] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.type = type
        self.title = title
        self.invalid_params = invalid_params
        self.headers = headers or {}


def problem_response(
    *,
    status: int,
    detail: str,
    type: str = ProblemType.BLANK,
    title: str | None = None,
    invalid_params: list[dict] | None = None,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    body = {
        "type": type,
        "title": str(title or STATUS_TITLES.get(status, _("Error"))),
        "status": status,
        "detail": str(detail),
    }
    if invalid_params is not None:
        body["invalid_params"] = invalid_params
    response = JsonResponse(
        body, status=status, content_type=PROBLEM_CONTENT_TYPE, json_dumps_params={"ensure_ascii": False}
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def is_problem(response) -> bool:
    return response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE)


def invalid_param(name: str, reason: str, location: str = "query") -> dict:
    return {"name": name, "location": location, "reason": str(reason)}


def validation_problem(invalid_params: list[dict]) -> Problem:
    return Problem(422, STATUS_DETAILS[422], type=ProblemType.VALIDATION, invalid_params=invalid_params)


def _reason(error: dict) -> str:
    template = VALIDATION_REASONS.get(error.get("type", ""))
    if template is None:
        return str(error.get("msg", ""))
    context = error.get("ctx") or {}
    try:
        return str(template) % context
    except (KeyError, TypeError, ValueError):
        return str(error.get("msg", ""))


def _invalid_params_from_ninja(errors: Iterable[dict]) -> list[dict]:
    params = []
    for error in errors:
        location, *path = error.get("loc") or ("body",)
        params.append(invalid_param(".".join(str(part) for part in path), _reason(error), str(location)))
    return params


def _invalid_params_from_django(error: DjangoValidationError) -> list[dict]:
    if not hasattr(error, "error_dict"):
        return []
    return [
        invalid_param(field, message, "body")
        for field, messages in error.message_dict.items()
        for message in messages
    ]


WWW_AUTHENTICATE = 'Bearer realm="renkei"'


def install_problem_handlers(api: NinjaAPI) -> None:
    """Replace ninja's `{"detail": …}` errors with problem details for every exception an endpoint,
    an authenticator or a service may raise."""

    def on_problem(request: HttpRequest, exc: Problem):
        return problem_response(
            status=exc.status,
            detail=exc.detail,
            type=exc.type,
            title=exc.title,
            invalid_params=exc.invalid_params,
            headers=exc.headers,
        )

    def on_http_error(request: HttpRequest, exc: HttpError):
        status = exc.status_code
        headers = {"WWW-Authenticate": WWW_AUTHENTICATE} if isinstance(exc, AuthenticationError) else None
        detail = STATUS_DETAILS.get(status, "")
        if status == 405:
            detail = detail % {"method": request.method}
        return problem_response(status=status, detail=detail, headers=headers)

    def on_ninja_validation_error(request: HttpRequest, exc: NinjaValidationError):
        return problem_response(
            status=422,
            detail=STATUS_DETAILS[422],
            type=ProblemType.VALIDATION,
            invalid_params=_invalid_params_from_ninja(exc.errors),
        )

    def on_django_validation_error(request: HttpRequest, exc: DjangoValidationError):
        # Services raise these with translated, user-facing messages: pass them on.
        return problem_response(
            status=422,
            detail=" ".join(exc.messages),
            type=ProblemType.VALIDATION,
            invalid_params=_invalid_params_from_django(exc),
        )

    def on_not_found(request: HttpRequest, exc: Http404):
        # The same body whether the object is missing or forbidden, so nothing leaks.
        return problem_response(status=404, detail=STATUS_DETAILS[404])

    def on_permission_denied(request: HttpRequest, exc: PermissionDenied):
        return problem_response(status=403, detail=STATUS_DETAILS[403])

    def on_unexpected(request: HttpRequest, exc: Exception):
        logger.exception("Unhandled error in API request %s %s", request.method, request.path)
        return problem_response(status=500, detail=STATUS_DETAILS[500])

    api.add_exception_handler(Problem, on_problem)
    api.add_exception_handler(HttpError, on_http_error)
    api.add_exception_handler(NinjaValidationError, on_ninja_validation_error)
    api.add_exception_handler(DjangoValidationError, on_django_validation_error)
    api.add_exception_handler(Http404, on_not_found)
    api.add_exception_handler(PermissionDenied, on_permission_denied)
    api.add_exception_handler(Exception, on_unexpected)
