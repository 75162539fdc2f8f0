from django.urls import path

from trialdesk.web.core import views

app_name = "core"
urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("tools/eligibility", views.eligibility_check, name="eligibility"),
    path("tools/sofa", views.sofa_calculator, name="sofa"),
    path("tools/dose", views.dose_calculator, name="dose"),
]
