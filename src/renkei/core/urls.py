from django.contrib.auth import views as auth_views
from django.urls import path

from renkei.core import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/profile/", views.profile, name="profile"),
    path("accounts/password/", views.PasswordLinkRequestView.as_view(), name="password_reset"),
    path("accounts/password/sent/", views.PasswordLinkSentView.as_view(), name="password_reset_done"),
    path(
        "accounts/password/set/<uidb64>/<token>/",
        views.PasswordSetView.as_view(),
        name="password_reset_confirm",
    ),
    path("accounts/password/done/", views.PasswordSetDoneView.as_view(), name="password_reset_complete"),
    path("accounts/2fa/setup/", views.two_factor_setup, name="two_factor_setup"),
    path("accounts/2fa/verify/", views.two_factor_verify, name="two_factor_verify"),
    path("i18n/language/", views.set_language, name="set_language"),
]
