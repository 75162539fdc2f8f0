from django.urls import path

from trialdesk.web.casebook import views

app_name = "casebook"
urlpatterns = [
    path("", views.index, name="index"),
    path("lab/", views.lab, name="lab"),
    path("deviations/", views.deviations, name="deviations"),
    path("sofa/live", views.live_sofa, name="live_sofa"),
    path("<str:subject_id>/", views.detail, name="detail"),
    path("<str:subject_id>/forms/<str:form_id>/<str:day>/", views.form_entry, name="form"),
    path("<str:subject_id>/forms/<str:form_id>/<str:day>/entered-in-error/",
         views.entered_in_error, name="entered_in_error"),
    path("<str:subject_id>/msc/product/", views.msc_product, name="msc_product"),
    path("<str:subject_id>/msc/infusion/", views.msc_infusion, name="msc_infusion"),
    path("<str:subject_id>/msc/not-given/", views.msc_not_given, name="msc_not_given"),
    path("<str:subject_id>/deviations/acknowledge", views.acknowledge, name="acknowledge"),
]
