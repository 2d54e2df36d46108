from django.urls import path

from renkei.sharing import dashboard

app_name = "dashboard"
urlpatterns = [
    path("", dashboard.index, name="index"),
    path("export/<slug:dataset>.<slug:fmt>", dashboard.export, name="export"),
]
