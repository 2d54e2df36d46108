"""The JSON API, mounted at /api/v1/: one NinjaAPI, one router per app.

Every endpoint requires a bearer token or a web session (see `renkei.core.api`), and every error
is RFC 7807 problem details (see `renkei.core.problems`) — including the ones ninja and Django
would otherwise answer themselves: unknown addresses (404) and wrong methods (405).
"""

import functools
import json
from pathlib import Path

from django.http import HttpRequest
from django.urls import URLPattern, re_path
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Swagger

from renkei.core.api import BearerTokenAuth, SessionAuth
from renkei.core.api import router as core_router
from renkei.core.problems import (
    PROBLEM_CONTENT_TYPE,
    STATUS_DETAILS,
    install_problem_handlers,
    is_problem,
    problem_response,
)
from renkei.directory.api import router as directory_router

# The committed OpenAPI document; a test fails when the live schema differs, so API changes are deliberate.
OPENAPI_SNAPSHOT = Path(__file__).parent / "core" / "tests" / "openapi.snapshot.json"

DESCRIPTION = """\
Renkei's directory of the critical-infrastructure community, for scripts and other systems.

Authenticate with `Authorization: Bearer <token>` (create a token with `renkei token create USERNAME`),
or with the web session (unsafe methods then need the `X-CSRFToken` header). Errors are RFC 7807
problem details (`application/problem+json`). See docs/api.md.
"""


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

    def get_openapi_operation_id(self, operation) -> str:
        # `organization_list` rather than `renkei_directory_api_organization_list`; ninja warns on clashes.
        return operation.view_func.__name__

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        """Error responses are documented with their real media type, `application/problem+json`."""
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        for operations in schema["paths"].values():
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
api.add_router("", core_router)
api.add_router("", directory_router)


def openapi_document() -> str:
    """The OpenAPI schema as the text kept in OPENAPI_SNAPSHOT (`renkei api_schema --update`)."""
    return json.dumps(api.get_openapi_schema(), indent=2, ensure_ascii=False) + "\n"
