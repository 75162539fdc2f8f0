from django.urls import path

from trialdesk.web.datamgmt import views

app_name = "datamgmt"
urlpatterns = [
    path("queries/", views.query_list, name="query_list"),
    path("queries/to-answer/", views.queries_to_answer, name="queries_to_answer"),
    path("query/<int:query_id>/answer/", views.answer, name="answer"),
    path("query/<int:query_id>/close/", views.close, name="close"),
    path("query/<int:query_id>/reopen/", views.reopen, name="reopen"),
    path("query/<int:query_id>/withdraw/", views.withdraw, name="withdraw"),
    path("record/<str:target>/<int:object_id>/", views.record, name="record"),
    path("record/<str:target>/<int:object_id>/query/", views.raise_query, name="raise_query"),
    path("record/<str:target>/<int:object_id>/sdv/", views.sdv, name="sdv"),
    path("record/<str:target>/<int:object_id>/sign/", views.sign_record, name="sign_record"),
    path("patient/<str:subject_id>/sign/", views.sign_casebook, name="sign_casebook"),
    path("patient/<str:subject_id>/lock/", views.patient_lock, name="patient_lock"),
    path("lock/", views.trial_lock, name="trial_lock"),
]
