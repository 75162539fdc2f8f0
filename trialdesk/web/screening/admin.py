from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from trialdesk.web.core.admin_base import ReadOnlyAdmin
from trialdesk.web.screening.models import Consent, Screening


@admin.register(Screening)
class ScreeningAdmin(SimpleHistoryAdmin, ReadOnlyAdmin):
    list_display = ("screening_number", "site", "status", "onset_utc", "created_at")
    list_filter = ("site", "status")


@admin.register(Consent)
class ConsentAdmin(SimpleHistoryAdmin, ReadOnlyAdmin):
    list_display = ("screening", "consent_type", "document_version", "obtained_at")
