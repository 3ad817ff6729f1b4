"""The admin site is where administrators assign roles (Django's users and groups); changes
made there enter the audit trail (scorecard.roles.groups_changed). Everything else is edited
on the product's own pages, which apply the product's rules."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from scorecard import roles
from scorecard.forms import AdminLoginForm


class RolesAdminSite(admin.AdminSite):
    site_header = "Kafka recovery readiness: roles"
    site_title = "Roles"
    index_title = "Users and their roles (groups)"
    login_form = AdminLoginForm

    def has_permission(self, request):
        return request.user.is_active and roles.can(request.user, "manage_roles")


class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("at", "actor", "action", "object_label", "cluster_name")
    list_filter = ("action",)
    search_fields = ("actor", "object_label", "cluster_name")

    def has_view_permission(self, request, obj=None):
        # The site admits administrators only (has_permission above); they read the whole trail.
        return roles.can(request.user, "manage_roles")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RolesUserAdmin(UserAdmin):
    """Users and their roles only: no superuser flag, staff flag or per-user permissions, which
    would give rights outside the four roles (and outside the audit trail)."""

    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Person", {"fields": ("first_name", "last_name", "email")}),
        ("Roles", {"fields": ("is_active", "groups"), "description": "Each group is a role; see docs/governance.md."}),
    )
    list_display = ("username", "email", "is_active", "role_names", "last_login")
    list_filter = ("is_active", "groups")
    filter_horizontal = ("groups",)

    @admin.display(description="roles")
    def role_names(self, user):
        return ", ".join(roles.user_roles(user)) or "none"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")


class TeamAdmin(admin.ModelAdmin):
    """Teams: who sees which clusters (a cluster's team is set on the cluster's form)."""

    list_display = ("name", "member_names")
    filter_horizontal = ("members",)

    @admin.display(description="members")
    def member_names(self, team):
        return ", ".join(user.get_username() for user in team.members.all()) or "none"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("members")
