"""The admin site is where administrators assign roles (Django's users and groups); changes
made there enter the audit trail (scorecard.roles.groups_changed). Everything else is edited
on the product's own pages, which apply the product's rules."""

from django.contrib import admin

from scorecard import roles


class RolesAdminSite(admin.AdminSite):
    site_header = "Kafka recovery readiness: roles"
    site_title = "Roles"
    index_title = "Users and their roles (groups)"

    def has_permission(self, request):
        return request.user.is_active and roles.can(request.user, "manage_roles")


class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("at", "actor", "action", "object_label", "cluster_name")
    list_filter = ("action",)
    search_fields = ("actor", "object_label", "cluster_name")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
