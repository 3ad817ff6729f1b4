from django.apps import AppConfig
from django.db.models.signals import m2m_changed, post_migrate, pre_save


class ScorecardConfig(AppConfig):
    name = "scorecard"
    verbose_name = "Recovery readiness scorecard"

    def ready(self):
        from django.contrib.auth import get_user_model

        from scorecard import roles

        # Groups need the permissions, which Django creates after each migrate.
        post_migrate.connect(roles.groups_sync, sender=self, dispatch_uid="scorecard-roles")
        # Roles given or taken anywhere (the admin site, the roles command) enter the audit trail.
        m2m_changed.connect(
            roles.groups_changed, sender=get_user_model().groups.through, dispatch_uid="scorecard-role-audit"
        )
        pre_save.connect(roles.user_changed, sender=get_user_model(), dispatch_uid="scorecard-user-audit")
