"""Home page, protocol overview and the bedside calculators (eligibility, SOFA, dose).

Views collect input and show results; every rule is the domain core's.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from trialdesk.clinical.sofa import SofaInputs, compute_sofa
from trialdesk.eligibility import evaluate
from trialdesk.errors import TrialError
from trialdesk.protocol.dose import protocol_dose
from trialdesk.web.accounts.permissions import public, requires
from trialdesk.web.core.forms import DoseForm, ScreeningForm, SofaForm
from trialdesk.web.core.protocol_access import current_protocol
from trialdesk.web.core.worklist import build_worklist


@requires("trial.view")
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """"Needs you now" (the user's worklist, :mod:`trialdesk.web.core.worklist`) above the
    protocol overview; an htmx request (the card's refresh) gets the card alone."""
    p = current_protocol()
    worklist = build_worklist(request.user, p)
    if request.htmx:
        return render(request, "core/_worklist.html", {"worklist": worklist})
    ratio = ":".join(str(p.randomization.ratio[a]) for a in p.arm_ids)
    return render(request, "core/home.html", {
        "p": p, "ratio": ratio, "schedule": _schedule_labels(p), "worklist": worklist,
    })


@public
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    p = current_protocol()
    return JsonResponse({"status": "ok", "protocol": p.protocol_id,
                         "protocol_version": p.protocol_version,
                         "protocol_sha256": p.content_sha256})


@requires("tools.use")
@require_http_methods(["GET", "POST"])
def eligibility_check(request: HttpRequest) -> HttpResponse:
    p = current_protocol()
    form = ScreeningForm(p, request.POST or None)
    result = error = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                result = evaluate(p, form.to_record())
            except TrialError as exc:
                error, status = exc, 400
        else:
            status = 400
    return render(request, "core/eligibility.html",
                  {"form": form, "result": result, "error": error}, status=status)


@requires("tools.use")
@require_http_methods(["GET", "POST"])
def sofa_calculator(request: HttpRequest) -> HttpResponse:
    form = SofaForm(request.POST or None)
    result = error = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                result = compute_sofa(SofaInputs.from_mapping(form.to_mapping()))
            except TrialError as exc:
                error, status = exc, 400
        else:
            status = 400
    return render(request, "core/sofa.html",
                  {"form": form, "result": result, "error": error}, status=status)


@requires("tools.use")
@require_http_methods(["GET", "POST"])
def dose_calculator(request: HttpRequest) -> HttpResponse:
    p = current_protocol()
    form = DoseForm(request.POST or None)
    result = error = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                result = protocol_dose(
                    p, data["weight_kg"], cells_per_kg=data["cells_per_kg"],
                    concentration_cells_per_ml=data["concentration_cells_per_ml"])
            except TrialError as exc:
                error, status = exc, 400
        else:
            status = 400
    return render(request, "core/dose.html",
                  {"form": form, "result": result, "error": error, "spec": p.intervention},
                  status=status)


def _schedule_labels(p) -> dict[int, tuple[str, ...]]:
    """Day → the labels (not ids) of the forms due that day, as the protocol names them."""
    labels = {a.form: a.label for a in p.schedule.assessments}
    return {day: tuple(labels.get(f, f) for f in forms)
            for day, forms in p.schedule_by_day().items()}
