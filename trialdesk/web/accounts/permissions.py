"""The permission table and the one check every view and API route goes through.

Deny by default: a view that declares no permission is refused by
:class:`DenyByDefaultMiddleware`. Site scoping: site roles see their own sites'
records only; trial-wide roles (site left empty) see every site.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from trialdesk.web.accounts.models import Membership, Role
from trialdesk.web.sites.models import Site

R = Role
ALL_ROLES = frozenset(Role)
#: everyone who signs in to the web pages; the integration role is an API token only
HUMAN_ROLES = ALL_ROLES - {R.INTEGRATION}
SITE_STAFF = frozenset({R.INVESTIGATOR, R.COORDINATOR})

#: action -> roles allowed. The single source of truth, listed in docs/permissions.md.
PERMISSIONS: dict[str, frozenset[Role]] = {
    "trial.view": HUMAN_ROLES,
    "tools.use": HUMAN_ROLES,
    "screening.view": SITE_STAFF | {R.DATA_MANAGER, R.MONITOR},
    "screening.edit": SITE_STAFF,
    "consent.record": SITE_STAFF,
    "randomization.randomize": SITE_STAFF,
    "randomization.view": SITE_STAFF | {R.LAB, R.DATA_MANAGER, R.MONITOR},
    "lab.dashboard": frozenset({R.LAB}),
    "casebook.view": SITE_STAFF | {R.LAB, R.DATA_MANAGER, R.MONITOR},
    "casebook.edit": SITE_STAFF,
    "msc.record": frozenset({R.LAB}),
    "deviation.view": SITE_STAFF | {R.DATA_MANAGER, R.MONITOR, R.SPONSOR},
    "deviation.acknowledge": frozenset({R.INVESTIGATOR, R.DATA_MANAGER}),
    "audit.view": frozenset({R.INVESTIGATOR, R.DATA_MANAGER, R.MONITOR, R.SPONSOR,
                             R.ADMINISTRATOR}),
    # the sealed list reveals the allocation sequence: its maker must be kept apart from
    # enrolment and from the blinded trial statistician (ICH E9 §2.3; SPIRIT 2013 16c)
    "randlist.manage": frozenset({R.DMC_STATISTICIAN, R.ADMINISTRATOR}),
    "ae.view": SITE_STAFF | {R.DATA_MANAGER, R.MONITOR, R.SPONSOR},
    "ae.report": SITE_STAFF,
    "safety.dashboard": frozenset({R.INVESTIGATOR, R.DATA_MANAGER, R.MONITOR, R.SPONSOR,
                                   R.ADMINISTRATOR}),
    # expedited (SUSAR) reports to the regulator are the sponsor's legal duty: the sponsor
    # records when it sent one (a time on the event, audited), never the event itself
    "safety.regulator_report": frozenset({R.DATA_MANAGER, R.SPONSOR, R.ADMINISTRATOR}),
    "query.view": SITE_STAFF | {R.DATA_MANAGER, R.MONITOR},
    "query.raise": frozenset({R.DATA_MANAGER, R.MONITOR}),
    "query.close": frozenset({R.DATA_MANAGER, R.MONITOR}),
    "query.answer": SITE_STAFF,
    "sdv.mark": frozenset({R.MONITOR}),
    "record.sign": frozenset({R.INVESTIGATOR}),
    "lock.manage": frozenset({R.DATA_MANAGER}),
    # the complete trial record (ODM 1.3.2 / long CSV) for inspection (docs/export.md);
    # the sponsor owns the trial's data and answers to the regulators for it
    "data.export": frozenset({R.DATA_MANAGER, R.SPONSOR, R.ADMINISTRATOR}),
    "prescreen.view": SITE_STAFF,
    # the ICU data feed: a user with the integration role at the site (or trial-wide)
    # holding an API token, e.g. the hospital's FHIR bridge (docs/prescreen.md)
    "prescreen.ingest": frozenset({R.INTEGRATION}),
    # trial reports (docs/reports.md): the open report pools all arms; the closed one
    # shows arm-level results: for the DMC and the unblinded statistician who prepares
    # it for them (the trial statistician stays blinded)
    "report.open": frozenset({R.STATISTICIAN, R.DMC_STATISTICIAN, R.DMC, R.DATA_MANAGER,
                              R.SPONSOR}),
    "report.closed": frozenset({R.DMC_STATISTICIAN, R.DMC}),
}

#: action -> what it lets a user do, one line each (docs/permissions.md; who may is above).
DESCRIPTIONS: dict[str, str] = {
    "trial.view": "See the protocol overview (home page).",
    "tools.use": "Use the bedside calculators: eligibility check, SOFA, MSC dose.",
    "screening.view": "See the screening log and each screening with its eligibility.",
    "screening.edit": "Open, edit and close screenings (incl. from an ICU candidate).",
    "consent.record": "Record informed consent on a screening.",
    "randomization.randomize": "Randomize an eligible, consented patient.",
    "randomization.view": "See a patient's allocation confirmation.",
    "lab.dashboard": "Cell-therapy lab: allocations needing an MSC product, with deadlines.",
    "casebook.view": "See patients' casebooks: schedule, recorded forms, SOFA.",
    "casebook.edit": "Enter and correct the ICU's daily forms (SOFA, therapy, markers, ...); "
                     "mark any form entered in error.",
    "msc.record": "Record the MSC product release and the infusion.",
    "deviation.view": "See protocol deviations (e.g. a late infusion).",
    "deviation.acknowledge": "Acknowledge a protocol deviation with a comment.",
    "audit.view": "See the audit trail of a record.",
    "randlist.manage": "Generate and import the sealed randomization list (it reveals the "
                       "allocation sequence: the unblinded statistician, not the blinded "
                       "trial statistician; ICH E9 §2.3).",
    "ae.view": "See a patient's adverse events and their reporting clocks.",
    "ae.report": "Report, update and mark entered in error adverse events; record the "
                 "report to the sponsor.",
    "safety.dashboard": "See the trial's safety dashboard: adverse events, reporting clocks.",
    "safety.regulator_report": "Record an expedited report to the regulator (the "
                               "sponsor's legal duty, so the sponsor may record it).",
    "query.view": "See the data queries on a record.",
    "query.raise": "Raise data queries; list all queries.",
    "query.close": "Close or reopen a query after its answer; withdraw one raised in error.",
    "query.answer": "Answer the queries raised at one's site.",
    "sdv.mark": "Mark a record as source-data verified.",
    "record.sign": "Sign a record or a whole casebook as investigator.",
    "lock.manage": "Lock a patient's casebook or the whole trial (database lock).",
    "data.export": "Download the complete trial record with its audit trail and signatures "
                   "(CDISC ODM 1.3.2 or long CSV); every export is logged.",
    "prescreen.view": "See the ICU candidate board (pre-screening from the data feed).",
    "prescreen.ingest": "Send ICU observations through the API (the data feed's token; "
                        "its integration account cannot sign in to the pages).",
    "report.open": "Generate and read the open (pooled, blinded) trial report.",
    "report.closed": "Generate and read the closed report with arm-level results (DMC, "
                     "and the unblinded statistician who prepares it).",
}


def roles_of(user: Any, site: Site | None = None) -> set[Role]:
    """Roles the user holds at ``site`` (trial-wide roles count everywhere)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    memberships = Membership.objects.filter(user=user, active=True)
    if site is not None:
        memberships = memberships.filter(Q(site=site) | Q(site=None))
    return {Role(m.role) for m in memberships}


def has_permission(user: Any, action: str, site: Site | None = None) -> bool:
    allowed = PERMISSIONS[action]
    return bool(roles_of(user, site) & allowed)


def sites_for(user: Any, action: str) -> QuerySet[Site]:
    """Sites where ``user`` may perform ``action`` (all sites for trial-wide roles)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Site.objects.none()
    memberships = Membership.objects.filter(user=user, active=True,
                                            role__in=PERMISSIONS[action])
    if memberships.filter(site=None).exists():
        return Site.objects.filter(active=True)
    return Site.objects.filter(active=True, pk__in=memberships.values("site"))


def check_site(user: Any, action: str, site: Site) -> None:
    """Refuse (403) when the user may not perform ``action`` at ``site``."""
    if not has_permission(user, action, site):
        raise PermissionDenied(f"Your role does not allow '{action}' at {site.name}.")


def requires(action: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare the permission a view needs; the middleware enforces it."""
    if action not in PERMISSIONS:
        raise KeyError(f"unknown permission '{action}'")

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        view.trialdesk_permission = action  # type: ignore[attr-defined]
        return view

    return decorate


def public(view: Callable[..., Any]) -> Callable[..., Any]:
    """Declare a view open to anyone (login page, health check)."""
    view.trialdesk_public = True  # type: ignore[attr-defined]
    return view


class DenyByDefaultMiddleware:
    """Refuse every view that has not declared who may use it."""

    def __init__(self, get_response: Callable[..., Any]):
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        return self.get_response(request)

    def process_view(self, request: Any, view_func: Any, view_args: Any, view_kwargs: Any):
        target = getattr(view_func, "view_class", view_func)
        module = getattr(view_func, "__module__", "") or ""
        if getattr(view_func, "trialdesk_public", False) or getattr(target, "trialdesk_public",
                                                                     False):
            return None
        if module.startswith(("django.contrib.admin", "django.views.static",
                              "django.contrib.staticfiles", "ninja")):
            return None  # the admin checks staff status itself; the API checks tokens
        action = getattr(view_func, "trialdesk_permission", None) or getattr(
            target, "trialdesk_permission", None)
        if action is None:
            raise PermissionDenied("This page declares no permission and is refused.")
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not has_permission(request.user, action):
            raise PermissionDenied(f"Your role does not allow '{action}'.")
        return None
