from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.models import Group
from django.urls import include, path

from api import views as api_views
from api.metrics import metrics
from api.v1 import api as api_v1
from scorecard.admin import AuditEventAdmin, RolesAdminSite, RolesUserAdmin, TeamAdmin
from scorecard.forms import LoginForm
from scorecard.models import AuditEvent, Team

roles_admin = RolesAdminSite(name="admin")
roles_admin.register(get_user_model(), RolesUserAdmin)
roles_admin.register(Group, GroupAdmin)
roles_admin.register(AuditEvent, AuditEventAdmin)
roles_admin.register(Team, TeamAdmin)

urlpatterns = [
    path("admin/", roles_admin.urls),
    path("metrics", metrics, name="metrics"),
    path("api/v1/", api_v1.urls),
    path("tokens/", api_views.token_list, name="api-tokens"),
    path("tokens/<int:token_id>/revoke/", api_views.token_revoke, name="api-token-revoke"),
    path("accounts/login/", auth_views.LoginView.as_view(authentication_form=LoginForm), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("scorecard.urls")),
    path("", include("drills.urls")),
]
