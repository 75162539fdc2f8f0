from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from trialdesk.web.casebook.models import Deviation, FormRecord
from trialdesk.web.core.admin_base import ReadOnlyAdmin


@admin.register(FormRecord)
class FormRecordAdmin(SimpleHistoryAdmin, ReadOnlyAdmin):
    list_display = ("allocation", "form_id", "day", "entered_by", "updated_at")
    list_filter = ("form_id",)


@admin.register(Deviation)
class DeviationAdmin(SimpleHistoryAdmin, ReadOnlyAdmin):
    list_display = ("allocation", "code", "severity", "status", "detected_at")
    list_filter = ("code", "status")
