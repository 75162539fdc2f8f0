from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from trialdesk.web.accounts.models import AccessEvent, Membership
from trialdesk.web.core.admin_base import NoDeleteAdmin, ReadOnlyAdmin


@admin.register(Membership)
class MembershipAdmin(SimpleHistoryAdmin, NoDeleteAdmin):
    list_display = ("user", "role", "site", "active")
    list_filter = ("role", "site", "active")


@admin.register(AccessEvent)
class AccessEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "username", "kind", "ip")
    list_filter = ("kind",)
