"""TAXII 2.1 addresses. Every address ends in a slash, as the specification writes them; any other
address under /taxii2/ gets a TAXII error message, not a web page."""

from django.urls import path, re_path

from renkei.interop import taxii

app_name = "taxii"

urlpatterns = [
    path("", taxii.discovery, name="discovery"),
    path("api/", taxii.api_root, name="api_root"),
    path("api/status/<uuid:status_id>/", taxii.status, name="status"),
    path("api/collections/", taxii.collections, name="collections"),
    path("api/collections/<uuid:collection_id>/", taxii.collection, name="collection"),
    path("api/collections/<uuid:collection_id>/manifest/", taxii.manifest, name="manifest"),
    path("api/collections/<uuid:collection_id>/objects/", taxii.objects, name="objects"),
    path(
        "api/collections/<uuid:collection_id>/objects/<str:object_id>/",
        taxii.object_detail,
        name="object",
    ),
    path(
        "api/collections/<uuid:collection_id>/objects/<str:object_id>/versions/",
        taxii.versions,
        name="versions",
    ),
    re_path(r"", taxii.not_found),
]
