from django.urls import include, path

from renkei.api import api

urlpatterns = [
    path("", include("renkei.core.urls")),
    path("directory/", include("renkei.directory.urls")),
    path("sharing/", include("renkei.sharing.urls")),
    path("dashboard/", include("renkei.sharing.urls_dashboard")),
    path("exchange/", include("renkei.interop.urls")),
    path("situations/", include("renkei.situations.urls")),
    path("api/v1/", api.urls),
    path("taxii2/", include("renkei.interop.urls_taxii")),
]
