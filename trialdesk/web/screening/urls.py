from django.urls import path

from trialdesk.web.screening import views

app_name = "screening"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("new", views.new_screening, name="new"),
    path("eligibility", views.live_eligibility, name="live_eligibility"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/edit", views.edit, name="edit"),
    path("<int:pk>/consent", views.consent, name="consent"),
    path("<int:pk>/randomize", views.randomize_view, name="randomize"),
    path("<int:pk>/close", views.close, name="close"),
    path("<int:pk>/audit", views.audit, name="audit"),
]
