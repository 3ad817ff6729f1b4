from django.urls import path

from scorecard import config_views, views

urlpatterns = [
    path("", views.index, name="scorecard-index"),
    path("clusters/new/", views.cluster_new, name="scorecard-cluster-new"),
    path("clusters/<int:cluster_id>/", views.scorecard_detail, name="scorecard-detail"),
    path("clusters/<int:cluster_id>/edit/", views.cluster_edit, name="scorecard-cluster-edit"),
    path("clusters/<int:cluster_id>/trends/", views.trends, name="scorecard-trends"),
    path("clusters/<int:cluster_id>/config.yaml", config_views.config_download, name="scorecard-config-export"),
    path("clusters/<int:cluster_id>/config/import/", config_views.config_import, name="scorecard-config-import"),
    path("config/import/", config_views.config_import_new, name="scorecard-config-import-new"),
    path("rows/<int:row_id>/edit/", views.row_edit, name="scorecard-row-edit"),
    path("rows/<int:row_id>/sign-off/", views.row_sign_off, name="scorecard-row-sign-off"),
    path("rows/<int:row_id>/evidence/", views.row_evidence, name="scorecard-row-evidence"),
    path("checks/<int:check_id>/", views.check_detail, name="scorecard-check"),
    path("checks/<int:check_id>/params/", views.check_params, name="scorecard-check-params"),
    path("checks/<int:check_id>/schedule/", views.check_schedule, name="scorecard-check-schedule"),
    path("checks/<int:check_id>/applicability/", views.check_applicability, name="scorecard-check-applicability"),
    path(
        "checks/<int:check_id>/applicability/approve/",
        views.check_applicability_approve,
        name="scorecard-check-applicability-approve",
    ),
    path("audit/", views.audit_list, name="scorecard-audit"),
    path("compare/", views.compare, name="scorecard-compare"),
    path("exports/", views.exports, name="scorecard-exports"),
    path("exports/<int:export_id>/download/", views.export_download, name="scorecard-export-download"),
]
