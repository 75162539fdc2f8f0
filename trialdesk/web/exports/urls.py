from django.urls import path

from trialdesk.web.exports import views

app_name = "exports"
urlpatterns = [
    path("", views.index, name="index"),
    path("odm/", views.download_odm, name="odm"),
    path("csv/", views.download_csv, name="csv"),
]
