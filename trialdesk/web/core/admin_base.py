"""Admin base classes: trial data is read-only in the admin and nothing is deleted.

Changes to trial data go through the service functions (reasons, checks, audit);
the admin is for administrators to look, and to manage sites and accounts.
"""

from __future__ import annotations

from django.contrib import admin


class NoDeleteAdmin(admin.ModelAdmin):
    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdmin(NoDeleteAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
