from django.urls import path

from renkei.interop import urls_feeds, views

app_name = "interop"

urlpatterns = [
    path("", views.collection_list, name="collection_list"),
    path("collections/new/", views.collection_create, name="collection_create"),
    path("collections/<uuid:collection_id>/", views.collection_detail, name="collection_detail"),
    path("collections/<uuid:collection_id>/edit/", views.collection_edit, name="collection_edit"),
    path("collections/<uuid:collection_id>/upload/", views.bundle_upload, name="bundle_upload"),
    path("objects/<int:object_pk>/", views.object_detail, name="object_detail"),
    path("statuses/<uuid:status_id>/", views.status_detail, name="status_detail"),
]

urlpatterns += urls_feeds.urlpatterns
