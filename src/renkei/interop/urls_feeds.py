"""TAXII feed pages, included into the `interop` namespace."""

from django.urls import path

from renkei.interop import feed_views

urlpatterns = [
    path("feeds/", feed_views.feed_list, name="feed_list"),
    path("feeds/new/", feed_views.feed_create, name="feed_create"),
    path("feeds/<uuid:feed_id>/", feed_views.feed_detail, name="feed_detail"),
    path("feeds/<uuid:feed_id>/edit/", feed_views.feed_edit, name="feed_edit"),
    path("feeds/<uuid:feed_id>/poll/", feed_views.feed_poll, name="feed_poll"),
]
