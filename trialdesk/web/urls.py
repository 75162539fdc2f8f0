from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("trialdesk.web.accounts.urls")),
    path("screening/", include("trialdesk.web.screening.urls")),
    path("allocation/", include("trialdesk.web.randomization.urls")),
    path("", include("trialdesk.web.core.urls")),
]
