from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from trialdesk.web.core.admin_base import ReadOnlyAdmin
from trialdesk.web.randomization.models import Allocation, RandomizationList


@admin.register(Allocation)
class AllocationAdmin(SimpleHistoryAdmin, ReadOnlyAdmin):
    list_display = ("subject_id", "site", "arm", "stratum", "randomized_at", "source")
    list_filter = ("site", "source")


@admin.register(RandomizationList)
class RandomizationListAdmin(ReadOnlyAdmin):
    """Shows list metadata only; the slots are never listed (allocation concealment)."""

    list_display = ("label", "method", "commitment_sha256", "active", "imported_at")
    exclude = ("csv_text",)
