from django.urls import path

from drills import views

urlpatterns = [
    path("clusters/<int:cluster_id>/run/", views.checks_run, name="drills-run-checks"),
    path("checks/<int:check_id>/run/", views.check_run, name="drills-run-check"),
    path("clusters/<int:cluster_id>/drills/", views.drill_list, name="drills-list"),
    path("clusters/<int:cluster_id>/drill-schedules/", views.schedule_new, name="drills-schedule-new"),
    path("drill-schedules/<int:schedule_id>/delete/", views.schedule_delete, name="drills-schedule-delete"),
    path("drills/<int:run_id>/", views.drill_detail, name="drills-detail"),
    path("drills/<int:run_id>/progress/", views.drill_progress, name="drills-progress"),
    path("drills/<int:run_id>/abort/", views.drill_abort, name="drills-abort"),
    path("drills/<int:run_id>/confirm/", views.drill_confirm_step, name="drills-confirm"),
]
