from django.urls import path

from scorecard import views

urlpatterns = [
    path("", views.index, name="scorecard-index"),
    path("clusters/new/", views.cluster_new, name="scorecard-cluster-new"),
    path("clusters/<int:cluster_id>/", views.scorecard_detail, name="scorecard-detail"),
    path("clusters/<int:cluster_id>/edit/", views.cluster_edit, name="scorecard-cluster-edit"),
    path("clusters/<int:cluster_id>/run/", views.run_checks, name="scorecard-run-checks"),
    path("rows/<int:row_id>/edit/", views.row_edit, name="scorecard-row-edit"),
    path("rows/<int:row_id>/evidence/", views.row_evidence, name="scorecard-row-evidence"),
    path("checks/<int:check_id>/", views.check_detail, name="scorecard-check"),
]
