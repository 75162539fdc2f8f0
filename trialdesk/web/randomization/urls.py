from django.urls import path

from trialdesk.web.randomization import views

app_name = "randomization"
urlpatterns = [
    path("lab/", views.lab_dashboard, name="lab_dashboard"),
    path("<str:subject_id>/", views.confirmation, name="confirmation"),
]
