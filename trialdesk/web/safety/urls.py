from django.urls import path

from trialdesk.web.safety import views

app_name = "safety"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("patient/<str:subject_id>/", views.patient_events, name="patient_events"),
    path("patient/<str:subject_id>/new/", views.new_event, name="new_event"),
    path("ae/<int:ae_id>/", views.event, name="event"),
    path("ae/<int:ae_id>/edit/", views.edit_event, name="edit_event"),
    path("ae/<int:ae_id>/sponsor-report/", views.report_to_sponsor, name="report_to_sponsor"),
    path("ae/<int:ae_id>/regulator-report/", views.report_to_regulator,
         name="report_to_regulator"),
    path("ae/<int:ae_id>/entered-in-error/", views.entered_in_error, name="entered_in_error"),
]
