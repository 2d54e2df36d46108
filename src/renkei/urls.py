from django.urls import include, path

urlpatterns = [
    path("", include("renkei.core.urls")),
    path("directory/", include("renkei.directory.urls")),
]
