import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "renkei.settings")
application = get_wsgi_application()
# Import every view and build the API's schemas (about a second) while the worker starts, before it
# accepts a connection, instead of stalling the first request each new worker serves.
get_resolver().url_patterns  # noqa: B018 (read for its side effect)
