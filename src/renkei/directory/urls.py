from django.urls import path

from renkei.directory import views

app_name = "directory"
urlpatterns = [
    path("sectors/", views.sector_list, name="sector_list"),
    path("sectors/<slug:code>/", views.sector_detail, name="sector_detail"),
    path("organizations/", views.organization_list, name="organization_list"),
    path("organizations/<int:pk>/", views.organization_detail, name="organization_detail"),
    path("organizations/<int:pk>/edit/", views.organization_edit, name="organization_edit"),
    path("organizations/<int:pk>/contact-routes/", views.contact_routes_edit, name="contact_routes_edit"),
    path("organizations/<int:pk>/members/add/", views.member_add, name="member_add"),
    path("people/", views.person_list, name="person_list"),
    path("people/<int:pk>/", views.person_detail, name="person_detail"),
]
