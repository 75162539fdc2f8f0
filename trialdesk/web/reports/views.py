"""Report pages: the list of generated reports, generating one, serving the stored files.

The open report (all arms pooled) is for ``report.open`` (statistician, unblinded
statistician, DMC, data manager, sponsor); the closed report (arm-level, unblinded) only
for ``report.closed`` (the DMC and the unblinded statistician who prepares it).
Every URL is version-specific, so a blinded role can never reach a closed artefact:
the open views serve only ``open`` rows and the closed views only ``closed`` rows. The
stored HTML and PDF are served byte for byte; the response headers carry their SHA-256
and the dataset's.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from trialdesk.errors import TrialError
from trialdesk.web.accounts.permissions import has_permission, requires
from trialdesk.web.core.protocol_access import current_protocol
from trialdesk.web.reports.models import ReportArtefact, ReportVersion
from trialdesk.web.reports.services import generate_report, store_report


@require_GET
@requires("report.open")
def index(request: HttpRequest) -> HttpResponse:
    may_closed = has_permission(request.user, "report.closed")
    versions = [ReportVersion.OPEN] + ([ReportVersion.CLOSED] if may_closed else [])
    reports = (ReportArtefact.objects.filter(version__in=versions)
               .select_related("generated_by").defer("html", "pdf")[:50])
    return render(request, "reports/index.html", {"reports": reports,
                                                  "may_closed": may_closed})


def _generate(request: HttpRequest, closed: bool) -> HttpResponse:
    try:
        generated = generate_report(current_protocol(), closed=closed)
    except TrialError as exc:
        messages.error(request, f"The report was not generated: {exc.message}")
        return redirect("reports:index")
    artefact = store_report(generated, user=request.user)
    messages.success(request, f"{artefact.get_version_display()} report generated from "
                              f"dataset {artefact.dataset_sha256}.")
    return redirect(f"{reverse('reports:index')}#report-{artefact.pk}")


@require_POST
@requires("report.open")
def generate_open(request: HttpRequest) -> HttpResponse:
    return _generate(request, closed=False)


@require_POST
@requires("report.closed")
def generate_closed(request: HttpRequest) -> HttpResponse:
    return _generate(request, closed=True)


def _artefact(request: HttpRequest, version: str) -> ReportArtefact:
    """The requested (``?id=``) or latest stored report of this version only."""
    rows = ReportArtefact.objects.filter(version=version)
    wanted = request.GET.get("id")
    if wanted:
        if not wanted.isdigit():
            raise Http404("No such report.")
        rows = rows.filter(pk=int(wanted))
    artefact = rows.first()
    if artefact is None:
        raise Http404(f"No {version} report has been generated yet.")
    return artefact


def _serve(artefact: ReportArtefact, kind: str) -> HttpResponse:
    if kind == "pdf":
        response = HttpResponse(bytes(artefact.pdf), content_type="application/pdf")
        stamp = artefact.generated_at.strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = (f'attachment; filename="{artefact.protocol_id}-'
                                           f'report-{artefact.version}-{stamp}.pdf"')
        response["X-Content-SHA256"] = artefact.pdf_sha256
    else:
        response = HttpResponse(artefact.html, content_type="text/html; charset=utf-8")
        response["X-Content-SHA256"] = artefact.html_sha256
    response["X-Dataset-SHA256"] = artefact.dataset_sha256
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@requires("report.open")
def open_html(request: HttpRequest) -> HttpResponse:
    return _serve(_artefact(request, ReportVersion.OPEN), "html")


@require_GET
@requires("report.open")
def open_pdf(request: HttpRequest) -> HttpResponse:
    return _serve(_artefact(request, ReportVersion.OPEN), "pdf")


@require_GET
@requires("report.closed")
def closed_html(request: HttpRequest) -> HttpResponse:
    return _serve(_artefact(request, ReportVersion.CLOSED), "html")


@require_GET
@requires("report.closed")
def closed_pdf(request: HttpRequest) -> HttpResponse:
    return _serve(_artefact(request, ReportVersion.CLOSED), "pdf")
