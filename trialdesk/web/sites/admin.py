from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from trialdesk.web.core.admin_base import NoDeleteAdmin
from trialdesk.web.sites.models import Site


@admin.register(Site)
class SiteAdmin(SimpleHistoryAdmin, NoDeleteAdmin):
    list_display = ("code", "name", "timezone", "active")
