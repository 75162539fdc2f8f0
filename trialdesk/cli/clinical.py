"""Clinical commands: protocol validate/show, screen, sofa, dose."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from trialdesk.cli.base import (
    JsonOpt,
    ProtocolOpt,
    app,
    err,
    handles_errors,
    out,
    print_json,
    read_json,
)
from trialdesk.clinical.sofa import SofaInputs, compute_sofa
from trialdesk.clinical.timeutil import parse_aware
from trialdesk.eligibility import CriterionStatus, evaluate
from trialdesk.protocol import DEFAULT_PROTOCOL, Protocol, load_protocol
from trialdesk.protocol.dose import protocol_dose

protocol_app = typer.Typer(help="Validate and show protocol files.", no_args_is_help=True)
app.add_typer(protocol_app, name="protocol")


# --- protocol ---------------------------------------------------------------------


@protocol_app.command("validate")
@handles_errors
def protocol_validate(
    file: Annotated[Path, typer.Argument(help="Protocol file to check.")],
    as_json: JsonOpt = False,
) -> None:
    """Check a protocol file; print its version and content hash (SHA-256)."""
    p = load_protocol(file)
    if as_json:
        print_json({"valid": True, "protocol_id": p.protocol_id,
                     "protocol_version": p.protocol_version, "sha256": p.content_sha256})
        return
    out.print(f"[green]valid[/]: {escape(str(file))} — {escape(p.identifiers.acronym)} "
              f"({escape(p.identifiers.registry_id)}) version {escape(p.protocol_version)}"
              f"\nsha256 {p.content_sha256}")


@protocol_app.command("show")
@handles_errors
def protocol_show(
    file: Annotated[Path, typer.Argument(help="Protocol file to show.")] = DEFAULT_PROTOCOL,
    as_json: JsonOpt = False,
) -> None:
    """Summarize a protocol: arms, allocation, criteria, intervention, schedule, outcomes."""
    p = load_protocol(file)
    if as_json:
        print_json(p.model_dump(mode="json"))
        return
    _show_protocol(p)


def _show_protocol(p: Protocol) -> None:
    ident = p.identifiers
    out.print(f"[bold]{escape(ident.acronym)}[/] — {escape(ident.title)}")
    out.print(f"{ident.registry_id} · {ident.phase} · sponsor {ident.sponsor} · "
              f"PI {ident.principal_investigator}", markup=False)
    out.print(f"protocol {p.protocol_id} v{p.protocol_version} ({p.version_date}) · "
              f"sha256 {p.content_sha256}", markup=False)
    ratio = ":".join(str(p.randomization.ratio[a]) for a in p.arm_ids)
    arms = Table("arm", "role", "description", title=f"Arms (ratio {ratio}, "
                 f"{p.randomization.method.value})")
    for arm in p.arms:
        arms.add_row(escape(arm.id), escape(arm.role), escape(arm.description))
    out.print(arms)
    crit = Table("id", "type", "criterion", "kind", title="Eligibility")
    for kind, c in p.criteria:
        crit.add_row(escape(c.id), kind, escape(c.text), c.kind)
    out.print(crit)
    dose = p.intervention.dose
    out.print(f"Intervention: {p.intervention.product}, {p.intervention.route}, "
              f"{dose.min_cells_per_kg:g}–{dose.max_cells_per_kg:g} cells/kg/{dose.per} "
              f"(target {dose.target_cells_per_kg:g}), {p.intervention.weight_basis} weight, "
              f"no later than {p.intervention.deadline_hours_after_onset:g} h after onset",
              markup=False)
    sched = Table("day", "forms", title="Schedule (day 0 = randomization)")
    for day, forms in p.schedule_by_day().items():
        sched.add_row(str(day), escape(", ".join(forms)))
    out.print(sched)
    for tier in ("primary", "secondary"):
        for o in getattr(p.outcomes, tier):
            out.print(f"{tier} outcome: {o.label}", markup=False)


# --- screen -----------------------------------------------------------------------


@app.command()
@handles_errors
def screen(
    patient: Annotated[Path, typer.Argument(help="Screening record, JSON ('-' = stdin).")],
    protocol: ProtocolOpt = DEFAULT_PROTOCOL,
    at: Annotated[str | None, typer.Option(
        "--at", help="Evaluate at this ISO-8601 time with offset (default: now).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate every eligibility criterion of the protocol for one patient."""
    p = load_protocol(protocol)
    record = read_json(patient)
    when = parse_aware(at, field="at") if at else None
    result = evaluate(p, record, when)
    if as_json:
        print_json(result.to_dict())
        return
    colours = {CriterionStatus.MET: "green", CriterionStatus.NOT_MET: "red",
               CriterionStatus.UNKNOWN: "yellow"}
    table = Table("id", "type", "criterion", "status", "reason",
                  title=f"{escape(p.identifiers.acronym)} eligibility at "
                        f"{result.evaluated_at_utc:%Y-%m-%d %H:%M} UTC")
    for c in result.criteria:
        table.add_row(escape(c.id), c.type, escape(c.text),
                      f"[{colours[c.status]}]{c.status.value}[/]", escape(c.reason))
    out.print(table)
    for problem in result.input_problems:
        err.print(f"[yellow]{problem['code']}[/] ({escape(str(problem['field']))}): "
                  f"{escape(problem['message'])}", soft_wrap=True)
    colour = {"eligible": "green", "ineligible": "red", "incomplete": "yellow"}
    out.print(f"Decision: [bold {colour[result.decision.value]}]{result.decision.value}[/]")
    if result.missing_fields:
        out.print(f"Still needed: {', '.join(result.missing_fields)}", markup=False)


# --- sofa -------------------------------------------------------------------------


@app.command()
@handles_errors
def sofa(
    observations: Annotated[Path, typer.Argument(
        help="Worst values of the day, JSON ('-' = stdin); see docs/formats.md.")],
    as_json: JsonOpt = False,
) -> None:
    """Compute the SOFA score (Vincent 1996) from raw values."""
    result = compute_sofa(SofaInputs.from_mapping(read_json(observations)))
    if as_json:
        print_json(result.to_dict())
        return
    out.print(str(result), markup=False, soft_wrap=True)


# --- dose -------------------------------------------------------------------------


@app.command()
@handles_errors
def dose(
    weight_kg: Annotated[float, typer.Option("--weight-kg", help="Body weight in kg.")],
    cells_per_kg: Annotated[float | None, typer.Option(
        "--cells-per-kg", help="Target dose (default: the protocol's target).")] = None,
    concentration: Annotated[float | None, typer.Option(
        "--concentration-cells-per-ml", help="Product concentration, for the volume.")] = None,
    height_cm: Annotated[float | None, typer.Option(
        "--height-cm", help="Height, when the protocol doses by predicted weight.")] = None,
    sex: Annotated[str | None, typer.Option(
        "--sex", help="female | male, when the protocol doses by predicted weight.")] = None,
    protocol: ProtocolOpt = DEFAULT_PROTOCOL,
    as_json: JsonOpt = False,
) -> None:
    """MSC dose for a body weight: target cells, allowed range, infusion volume."""
    result = protocol_dose(load_protocol(protocol), weight_kg, cells_per_kg=cells_per_kg,
                           concentration_cells_per_ml=concentration, height_cm=height_cm,
                           sex=sex)
    if as_json:
        print_json(result.to_dict())
        return
    out.print(str(result), markup=False, soft_wrap=True)


