from django.conf import settings
from django.utils.functional import SimpleLazyObject

from renkei.directory.models import Organization

# Which main-navigation entry a page belongs to, by the URL name's prefix.
_SECTIONS = (
    ("sector", "sectors"),
    ("organization", "organizations"),
    ("contact", "organizations"),
    ("member", "organizations"),
    ("person", "people"),
)


def _section(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return ""
    if match.url_name == "home":
        return "home"
    if match.namespace == "directory":
        for prefix, section in _SECTIONS:
            if match.url_name.startswith(prefix):
                return section
    return ""


def navigation(request):
    """Values every page's header needs."""
    user = getattr(request, "user", None)
    signed_in = user is not None and user.is_authenticated
    return {
        "renkei_languages": settings.LANGUAGES,
        "nav_section": _section(request),
        # Evaluated only when a template shows it, i.e. once per signed-in page.
        "header_organizations": SimpleLazyObject(
            lambda: (
                list(Organization.objects.restrict(user).filter(memberships__user=user).distinct())
                if signed_in
                else []
            )
        ),
    }
