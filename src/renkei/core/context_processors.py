from django.conf import settings


def navigation(request):
    """Values every page's header needs."""
    return {"renkei_languages": settings.LANGUAGES}
