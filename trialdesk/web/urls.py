from django.contrib import admin
from django.urls import include, path

from trialdesk.web.api.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("trialdesk.web.accounts.urls")),
    path("screening/", include("trialdesk.web.screening.urls")),
    path("allocation/", include("trialdesk.web.randomization.urls")),
    path("safety/", include("trialdesk.web.safety.urls")),
    path("data/", include("trialdesk.web.datamgmt.urls")),
    path("casebook/", include("trialdesk.web.casebook.urls")),
    path("candidates/", include("trialdesk.web.prescreen.urls")),
    path("reports/", include("trialdesk.web.reports.urls")),
    path("exports/", include("trialdesk.web.exports.urls")),
    path("api/", api.urls),
    path("", include("trialdesk.web.core.urls")),
]
