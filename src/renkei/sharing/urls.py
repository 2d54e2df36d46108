from django.urls import path

from renkei.sharing import views

app_name = "sharing"
urlpatterns = [
    path("reports/", views.report_list, name="report_list"),
    path("reports/new/", views.report_create, name="report_create"),
    path("reports/new/pickers/<slug:name>/", views.report_picker, name="report_picker"),
    path("reports/<uuid:pk>/", views.report_detail, name="report_detail"),
    path("reports/<uuid:pk>/update/", views.report_update, name="report_update"),
    path("reports/<uuid:pk>/comments/", views.report_comment, name="report_comment"),
    path("reports/<uuid:pk>/questions/", views.report_question, name="report_question"),
    path("reports/<uuid:pk>/questions/<int:question_pk>/answer/", views.report_answer, name="report_answer"),
    path("reports/<uuid:pk>/forward/", views.report_forward, name="report_forward"),
    path("reports/<uuid:pk>/forward/pickers/<slug:name>/", views.forward_picker, name="forward_picker"),
    path("reports/<uuid:pk>/links/", views.report_link, name="report_link"),
    path("reports/<uuid:pk>/links/<uuid:other_pk>/remove/", views.report_unlink, name="report_unlink"),
    path("reports/<uuid:pk>/cause/", views.report_reclassify, name="report_reclassify"),
    path("reports/<uuid:pk>/label/", views.report_relabel, name="report_relabel"),
    path(
        "reports/<uuid:pk>/attachments/<uuid:attachment_pk>/",
        views.report_attachment_download,
        name="report_attachment_download",
    ),
    path("reports/<uuid:pk>/anonymize/", views.anonymized_create, name="anonymized_create"),
    path("anonymized/", views.anonymized_list, name="anonymized_list"),
    path("anonymized/<uuid:pk>/", views.anonymized_detail, name="anonymized_detail"),
    path("advisories/", views.advisory_list, name="advisory_list"),
    path("advisories/new/", views.advisory_create, name="advisory_create"),
    path("advisories/new/pickers/<slug:name>/", views.advisory_picker, name="advisory_picker"),
    path("advisories/<uuid:pk>/", views.advisory_detail, name="advisory_detail"),
    path("advisories/<uuid:pk>/acknowledge/", views.advisory_acknowledge, name="advisory_acknowledge"),
    path(
        "advisories/<uuid:pk>/attachments/<uuid:attachment_pk>/",
        views.advisory_attachment_download,
        name="advisory_attachment_download",
    ),
    path(
        "advisories/<uuid:pk>/acknowledgements/",
        views.advisory_acknowledgements,
        name="advisory_acknowledgements",
    ),
    path("inbox/", views.inbox, name="inbox"),
]
