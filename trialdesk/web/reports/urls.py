from django.urls import path

from trialdesk.web.reports import views

app_name = "reports"
urlpatterns = [
    path("", views.index, name="index"),
    path("open/generate/", views.generate_open, name="generate_open"),
    path("closed/generate/", views.generate_closed, name="generate_closed"),
    path("open/", views.open_html, name="open_html"),
    path("open/pdf/", views.open_pdf, name="open_pdf"),
    path("closed/", views.closed_html, name="closed_html"),
    path("closed/pdf/", views.closed_pdf, name="closed_pdf"),
]
