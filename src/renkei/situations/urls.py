from django.urls import path

from renkei.situations import views

app_name = "situations"

urlpatterns = [
    path("", views.situation_list, name="situation_list"),
    path("rules/", views.rule_list, name="rule_list"),
    path("rules/new/", views.rule_edit, name="rule_create"),
    path("rules/<int:pk>/", views.rule_edit, name="rule_edit"),
    path("rules/<int:pk>/switch/", views.rule_switch, name="rule_switch"),
    path("setup/", views.setup, name="setup"),
    path("setup/levels/", views.level_edit, name="level_create"),
    path("setup/levels/<int:pk>/", views.level_edit, name="level_edit"),
    path("setup/roster/", views.roster_entry_add, name="roster_entry_add"),
    path("setup/roster/<int:pk>/remove/", views.roster_entry_remove, name="roster_entry_remove"),
    path("setup/dependencies/", views.dependency_save, name="dependency_save"),
    path("setup/dependencies/<int:pk>/remove/", views.dependency_remove, name="dependency_remove"),
    path("proposals/", views.proposal_list, name="proposal_list"),
    path("proposals/<int:pk>/", views.proposal_detail, name="proposal_detail"),
    path("proposals/<int:pk>/declare/", views.proposal_declare, name="proposal_declare"),
    path("proposals/<int:pk>/dismiss/", views.proposal_dismiss, name="proposal_dismiss"),
    path("<int:pk>/", views.situation_detail, name="situation_detail"),
    path("<int:pk>/live/", views.situation_live, name="situation_live"),
    path("<int:pk>/approve/", views.situation_approve, name="situation_approve"),
    path("<int:pk>/withdraw/", views.situation_withdraw, name="situation_withdraw"),
    path("<int:pk>/decide/", views.situation_decide, name="situation_decide"),
    path("<int:pk>/log/", views.situation_log, name="situation_log"),
    path("<int:pk>/log/<int:entry_pk>/answered/", views.question_answered, name="question_answered"),
    path("<int:pk>/participants/", views.participant_add, name="participant_add"),
    path("<int:pk>/reports/", views.situation_report_add, name="situation_report_add"),
    path("<int:pk>/after-action/", views.after_action, name="after_action"),
    path("<int:pk>/after-action.pdf", views.after_action_pdf, name="after_action_pdf"),
    path("<int:pk>/findings/", views.finding_add, name="finding_add"),
    path("spillover/", views.spillover_list, name="spillover_list"),
    path("spillover/<int:pk>/", views.spillover_detail, name="spillover_detail"),
    path("spillover/<int:pk>/dismiss/", views.spillover_dismiss, name="spillover_dismiss"),
]
