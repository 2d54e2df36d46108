"""The JSON API, mounted at /api/v1/: one NinjaAPI, one router per app.

Every endpoint requires a bearer token or a web session (see `renkei.core.api`), and every error
is RFC 7807 problem details (see `renkei.core.problems`) — including the ones ninja and Django
would otherwise answer themselves: unknown addresses (404) and wrong methods (405).
"""

import functools
import inspect
import json
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.urls import URLPattern, re_path
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Swagger

from renkei.core.api import BearerTokenAuth, SessionAuth
from renkei.core.api import router as core_router
from renkei.core.idempotency import replay_known_key, run_in_transaction
from renkei.core.problems import (
    PROBLEM_CONTENT_TYPE,
    STATUS_DETAILS,
    install_problem_handlers,
    is_problem,
    problem_response,
)
from renkei.directory.api import router as directory_router
from renkei.interop.api import router as interop_router
from renkei.sharing.api import router as sharing_router
from renkei.situations.api import router as situations_router

# The committed OpenAPI document; a test fails when the live schema differs, so API changes are deliberate.
OPENAPI_SNAPSHOT = Path(__file__).parent / "core" / "tests" / "openapi.snapshot.json"

DESCRIPTION = """\
Renkei's directory of the critical-infrastructure community and its information sharing (incident
reports, advisories, acknowledgements, anonymized copies), for scripts and other systems.

Authenticate with `Authorization: Bearer <token>` (create a token with `renkei token create USERNAME`),
or with the web session (unsafe methods then need the `X-CSRFToken` header). Errors are RFC 7807
problem details (`application/problem+json`). Every POST accepts an `Idempotency-Key` header: the
same key from the same user answers with the first result. See docs/api.md.
"""


IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": "Repeating a request with the same key (and the same body) returns the first result "
    "instead of acting twice. Use a new key, e.g. a UUID, for each new request.",
}


def _with_problem_405(view):
    """ninja answers a wrong method with a bare `HttpResponseNotAllowed`; give it a problem body."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not is_problem(response):
            return problem_response(
                status=405,
                detail=STATUS_DETAILS[405] % {"method": request.method},
                headers={"Allow": response["Allow"]},
            )
        return response

    return wrapper


def _refuse_unreadable_body(run):
    """Before anything reads a request body: 415 unless it is JSON (or a type the operation documents,
    such as multipart), 413 when a JSON body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE. Operations
    that take other types check their size themselves (their limit depends on the files or bundles)."""
    operation = inspect.unwrap(run).__self__
    documented = (operation.openapi_extra or {}).get("requestBody", {}).get("content", {})
    media_types = {"application/json", *documented}

    @functools.wraps(run)
    def wrapper(request: HttpRequest, *args, **kwargs):
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length and request.content_type not in media_types:
            return problem_response(
                status=415,
                title=_("Unsupported media type"),
                detail=_("Send the body as %(types)s.") % {"types": " or ".join(sorted(media_types))},
            )
        if request.content_type == "application/json" and length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return problem_response(
                status=413,
                title=_("Request body too large"),
                detail=_("The body may be at most %(limit)s.")
                % {"limit": filesizeformat(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)},
            )
        return run(request, *args, **kwargs)

    return wrapper


@csrf_exempt
def _not_found(request: HttpRequest, *args, **kwargs):
    return problem_response(status=404, detail=STATUS_DETAILS[404])


class RenkeiAPI(NinjaAPI):
    def _get_urls(self):
        urls = [
            URLPattern(url.pattern, _with_problem_405(url.callback), url.default_args, url.name)
            if isinstance(url, URLPattern)
            else url
            for url in super()._get_urls()
        ]
        # Last, so that any other address under the API is a problem-details 404, not an HTML page.
        urls.append(re_path(r"^", _not_found, name="not-found"))
        return urls

    def validation_error_from_error_contexts(self, error_contexts):
        """Name body fields as they appear in the body (`observables.0.type`), not after the view's
        parameter that receives the whole body (`payload.observables.0.type`)."""
        error = super().validation_error_from_error_contexts(error_contexts)
        whole_body_parameters = {
            name
            for context in error_contexts
            if context.model.__ninja_param_source__ == "body" and len(context.model.model_fields) == 1
            for name in context.model.model_fields
        }
        for item in error.errors:
            location, *path = item["loc"]
            if location == "body" and path and path[0] in whole_body_parameters:
                item["loc"] = (location, *path[1:])
        return error

    def get_openapi_operation_id(self, operation) -> str:
        # `organization_list` rather than `renkei_directory_api_organization_list`; ninja warns on clashes.
        return operation.view_func.__name__

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        """Error responses are documented with their real media type, `application/problem+json`."""
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        for operations in schema["paths"].values():
            if "post" in operations:
                parameters = operations["post"].setdefault("parameters", [])
                if IDEMPOTENCY_KEY_PARAMETER not in parameters:
                    parameters.append(IDEMPOTENCY_KEY_PARAMETER)
            for operation in operations.values():
                for status, response in operation["responses"].items():
                    if int(status) >= 400 and "content" in response:
                        response["content"] = {PROBLEM_CONTENT_TYPE: response["content"].popitem()[1]}
        return schema


api = RenkeiAPI(
    title="Renkei API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api",
    auth=[BearerTokenAuth(), SessionAuth()],
    # Swagger UI would otherwise send the schema to validator.swagger.io: no page may call out.
    docs=Swagger(settings={"validatorUrl": None}),
)
install_problem_handlers(api)
# View decorators wrap in the order added, the last outermost: the body check runs inside the
# transaction that `run_in_transaction` opens, and `replay_known_key` once the user is known.
api.add_decorator(_refuse_unreadable_body, mode="view")
api.add_decorator(run_in_transaction, mode="view")
api.add_decorator(replay_known_key, mode="operation")
api.add_router("", core_router)
api.add_router("", directory_router)
api.add_router("", sharing_router)
api.add_router("", interop_router)
api.add_router("", situations_router)


def openapi_document() -> str:
    """The OpenAPI schema as the text kept in OPENAPI_SNAPSHOT (`renkei api_schema --update`)."""
    return json.dumps(api.get_openapi_schema(), indent=2, ensure_ascii=False) + "\n"
