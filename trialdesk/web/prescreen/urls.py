from django.urls import path

from trialdesk.web.prescreen import views

app_name = "prescreen"
urlpatterns = [
    path("", views.board, name="board"),
    path("<int:prescreen_id>/", views.patient, name="patient"),
    path("<int:prescreen_id>/open-screening", views.open_screening, name="open_screening"),
]
