"""Design commands: ``design boundaries`` (group-sequential efficacy boundaries),
``design sample-size`` (binary outcome) and ``design simulate`` (operating
characteristics of the protocol's whole design)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trialdesk.analysis.boundaries import TYPE_LABELS, group_sequential_boundaries
from trialdesk.cli.base import JsonOpt, ProtocolOpt, app, err, handles_errors, out, print_json
from trialdesk.design.sample_size import binary_sample_size, inflate, survival_sample_size
from trialdesk.errors import DesignError
from trialdesk.protocol import load_protocol
from trialdesk.protocol.loader import DEFAULT_PROTOCOL
from trialdesk.simulation.operating import simulate_design

design_app = typer.Typer(help="Trial design: group-sequential boundaries, sample size, and "
                              "simulated operating characteristics.", no_args_is_help=True)
app.add_typer(design_app, name="design")


class BoundaryChoice(StrEnum):
    OBF = "obf"
    POCOCK = "pocock"
    LD_OBF = "ld-obf"
    LD_POCOCK = "ld-pocock"


def _parse_fractions(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise DesignError(f"--information-fractions: '{text}' is not a comma-separated list "
                          "of numbers (e.g. 0.5,1)", field="information_fractions") from None


def _check_alpha(value: float) -> float:
    if not 0 < value < 0.5:
        raise typer.BadParameter(f"{value:g} is not a type I error: give a number strictly "
                                 "between 0 and 0.5, e.g. 0.05.")
    return value


@design_app.command("boundaries")
@handles_errors
def boundaries(
    type_: Annotated[BoundaryChoice, typer.Option(
        "--type", help="obf, pocock (classical O'Brien-Fleming / Pocock), ld-obf, ld-pocock "
                       "(Lan-DeMets alpha spending, O'Brien-Fleming / Pocock type).",
        case_sensitive=False)],
    looks: Annotated[int | None, typer.Option(
        "--looks", min=1, max=50,
        help="Number of analyses including the final one, equally spaced in information "
             "(or give --information-fractions).")] = None,
    alpha: Annotated[float, typer.Option(
        "--alpha", callback=_check_alpha,
        help="Overall type I error; two-sided designs spend alpha/2 per side.")] = 0.05,
    sides: Annotated[int, typer.Option(
        "--sides", min=1, max=2, help="2: symmetric two-sided; 1: one-sided (upper).")] = 2,
    fractions: Annotated[str | None, typer.Option(
        "--information-fractions",
        help="Information fraction of each analysis, increasing, the last 1 "
             "(e.g. 0.3,0.7,1).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Efficacy boundaries (z), nominal p-values and cumulative alpha spent at each look;
    numerical integration as in Jennison & Turnbull ch. 19, checked against R's rpact."""
    b = group_sequential_boundaries(
        looks, information_fractions=_parse_fractions(fractions) if fractions else None,
        type=type_.value, alpha=alpha, sides=1 if sides == 1 else 2)
    if as_json:
        print_json(b.to_dict())
        return
    side = "two-sided, symmetric" if b.sides == 2 else "one-sided"
    table = Table("look", "information fraction", "z boundary", "nominal p",
                  "cumulative alpha spent",
                  title=f"{TYPE_LABELS[b.type]}: {b.looks} looks, alpha {b.alpha:g} {side}")
    for row in b.rows():
        table.add_row(*row)
    out.print(table)
    rule = "|Z| ≥ boundary" if b.sides == 2 else "Z ≥ boundary"
    out.print(f"Reject H0 at a look when {rule} (p ≤ nominal p, {b.sides}-sided).",
              markup=False)


# --- design sample-size ---------------------------------------------------------------


LooksOpt = Annotated[int | None, typer.Option(
    "--looks", min=1, max=20,
    help="Analyses including the final one (equally spaced): inflate for a group-sequential "
         "design.")]
TypeOpt = Annotated[BoundaryChoice, typer.Option(
    "--type", case_sensitive=False, help="Boundary type with --looks: obf, pocock, ld-obf, "
                                         "ld-pocock.")]


class SampleSizeMethod(StrEnum):
    NORMAL = "normal"
    NORMAL_CC = "normal-cc"
    ARCSINE = "arcsine"
    EXACT = "exact"


@design_app.command("sample-size")
@handles_errors
def sample_size(
    p_control: Annotated[float, typer.Option(
        "--p-control", help="Event probability on control (e.g. 0.8: 80% 28-day mortality).")],
    p_treatment: Annotated[float, typer.Option(
        "--p-treatment", help="Event probability on treatment (e.g. 0.4).")],
    power: Annotated[float, typer.Option("--power", help="Target power, e.g. 0.8.")] = 0.8,
    alpha: Annotated[float, typer.Option(
        "--alpha", callback=_check_alpha, help="Type I error (two-sided unless --sides 1).")
    ] = 0.05,
    method: Annotated[SampleSizeMethod, typer.Option(
        "--method", case_sensitive=False,
        help="normal (power.prop.test), normal-cc (Fleiss continuity correction), arcsine, "
             "exact (Fisher's exact test by enumeration).")] = SampleSizeMethod.NORMAL,
    sides: Annotated[int, typer.Option("--sides", min=1, max=2,
                                       help="2: two-sided test; 1: one-sided.")] = 2,
    looks: LooksOpt = None,
    type_: TypeOpt = BoundaryChoice.OBF,
    as_json: JsonOpt = False,
) -> None:
    """Per-arm sample size (rounded up) for a binary outcome and the power it achieves;
    with --looks, also the maximum n of the group-sequential design (inflation factor as
    rpact's getDesignCharacteristics)."""
    result = binary_sample_size(p_control, p_treatment, alpha=alpha, power=power,
                                method=method.value, sides=sides)
    fixed = result.n_unrounded if result.n_unrounded is not None else result.n_per_arm
    grouped = _inflated(fixed, looks, type_, alpha, sides, power)
    if as_json:
        print_json({**result.to_dict(),
                    "group_sequential": grouped.to_dict() if grouped else None})
        return
    table = Table("method", "n per arm", "n in all", "achieved power", "target",
                  title=f"p_control {p_control:g} vs p_treatment {p_treatment:g}, alpha "
                        f"{alpha:g} {'two' if sides == 2 else 'one'}-sided")
    table.add_row(result.method, str(result.n_per_arm), str(result.n_total),
                  f"{result.achieved_power:.4f}", f"{power:g}")
    out.print(table)
    if result.method == "exact":
        if result.stays_above_target:
            out.print(f"Exact power stays ≥ {power:g} for every n up to {result.horizon}.")
        else:
            out.print(f"Saw-tooth: exact power falls below {power:g} again for some n up to "
                      f"{result.horizon}; it stays ≥ {power:g} from n = {result.n_stable}.")
    if grouped:
        _print_inflated(grouped, looks, type_)


def _inflated(fixed_n_per_arm: float, looks: int | None, type_: BoundaryChoice, alpha: float,
              sides: int, power: float):
    if looks is None or looks == 1:
        return None
    b = group_sequential_boundaries(looks, type=type_.value, alpha=alpha,
                                    sides=1 if sides == 1 else 2)
    return inflate(fixed_n_per_arm, b, power)


def _print_inflated(grouped, looks: int, type_: BoundaryChoice, unit: str = "n per arm") -> None:
    at_looks = ", ".join(str(n) for n in grouped.n_per_arm_at_looks)
    out.print(f"{TYPE_LABELS[type_.value]}, {looks} equally spaced looks: inflation factor "
              f"{grouped.inflation_factor:.4f} → maximum {unit} {grouped.max_n_per_arm} "
              f"({at_looks} at the looks).")


# --- design events (time to event) ----------------------------------------------------


class EventsMethod(StrEnum):
    SCHOENFELD = "schoenfeld"
    FREEDMAN = "freedman"


@design_app.command("events")
@handles_errors
def events(
    hazard_ratio: Annotated[float, typer.Option(
        "--hazard-ratio", help="Hazard ratio treatment vs control to detect, e.g. 0.5.")],
    event_probability: Annotated[float | None, typer.Option(
        "--event-probability",
        help="Probability that a patient has the event during follow-up (e.g. 0.6 for 28-day "
             "mortality pooled over arms); gives the number of patients.")] = None,
    power: Annotated[float, typer.Option("--power", help="Target power, e.g. 0.8.")] = 0.8,
    alpha: Annotated[float, typer.Option(
        "--alpha", callback=_check_alpha, help="Type I error (two-sided unless --sides 1).")
    ] = 0.05,
    method: Annotated[EventsMethod, typer.Option(
        "--method", case_sensitive=False,
        help="schoenfeld (log hazard ratio) or freedman.")] = EventsMethod.SCHOENFELD,
    sides: Annotated[int, typer.Option("--sides", min=1, max=2,
                                       help="2: two-sided test; 1: one-sided.")] = 2,
    looks: LooksOpt = None,
    type_: TypeOpt = BoundaryChoice.OBF,
    as_json: JsonOpt = False,
) -> None:
    """Events (and patients) a log-rank test needs to detect a hazard ratio with 1:1
    allocation; with --looks, inflated for the group-sequential design."""
    result = survival_sample_size(hazard_ratio, event_probability=event_probability,
                                  alpha=alpha, power=power, sides=sides, method=method.value)
    grouped = _inflated(result.events_unrounded, looks, type_, alpha, sides, power)
    if as_json:
        print_json({**result.to_dict(),
                    "group_sequential": grouped.to_dict() if grouped else None})
        return
    table = Table("method", "events", "patients", "target power",
                  title=f"hazard ratio {hazard_ratio:g}, alpha {alpha:g} "
                        f"{'two' if sides == 2 else 'one'}-sided, 1:1")
    table.add_row(result.method, str(result.events),
                  "—" if result.n_total is None else str(result.n_total), f"{power:g}")
    out.print(table)
    if grouped:
        _print_inflated(grouped, looks, type_, unit="events")


# --- design simulate ------------------------------------------------------------------


def _pct(p: float) -> str:
    return f"{100 * p:.2f}%"


@design_app.command("simulate")
@handles_errors
def simulate(
    trials: Annotated[int, typer.Option("--trials", min=1,
                                        help="Simulated trials per scenario.")] = 100_000,
    n_per_arm: Annotated[int | None, typer.Option(
        "--n-per-arm", min=1,
        help="Patients in the control arm (default: the protocol's planned enrolment).")
    ] = None,
    p_control: Annotated[float, typer.Option(
        "--p-control", help="28-day mortality on control (RUMCESS: 0.8).")] = 0.8,
    p_treatment: Annotated[float, typer.Option(
        "--p-treatment", help="28-day mortality on treatment (RUMCESS MSC arm: 0.4).")] = 0.4,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (reproducible).")
                    ] = 20130501,
    pool: Annotated[int, typer.Option(
        "--allocation-pool", min=1,
        help="Randomization runs (production code) whose arm sizes the trials draw from.")
    ] = 1000,
    protocol: ProtocolOpt = DEFAULT_PROTOCOL,
    as_json: JsonOpt = False,
) -> None:
    """Operating characteristics of the protocol's whole design: its randomization,
    interim looks and primary test on simulated trials (type I error, power, stopping
    per look, expected size, allocation imbalance), beside the exact values."""
    proto = load_protocol(protocol)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, disable=as_json or trials < 200_000,
                  transient=True) as bar:
        task = bar.add_task("simulating trials", total=2 * trials)
        result = simulate_design(proto, trials=trials, n_per_arm=n_per_arm,
                                 p_control=p_control, p_treatment=p_treatment, seed=seed,
                                 allocation_pool=pool,
                                 progress=lambda done: bar.advance(task, done))
    if as_json:
        print_json(result.to_dict())
        return
    d = result.design
    kind = (f"group-sequential ({d.boundaries.type}, looks at {list(d.look_sizes)} patients)"
            if d.boundaries else f"fixed design, {d.n_total} patients")
    out.print(f"{d.protocol_id}: {kind}; randomization {d.method.value}; primary test "
              f"{d.primary_test}, alpha {d.alpha:g} {'two' if d.sides == 2 else 'one'}-sided; "
              f"{trials:,} trials per scenario, seed {seed}", markup=False)
    table = Table("scenario", "p_c", "p_t", "rejects H0 ± SE", "exact", "stops per look",
                  "E[N]")
    for s in (result.null, result.alternative):
        name = "type I error" if s is result.null else "power"
        exact = _pct(s.exact.rejection) if s.exact else "—"
        table.add_row(name, f"{s.p_control:g}", f"{s.p_treatment:g}",
                      f"{_pct(s.rejection)} ± {_pct(s.rejection_se)}", exact,
                      " / ".join(_pct(x) for x in s.stop_by_look), f"{s.expected_n_total:.2f}")
    out.print(table)
    a = result.allocation
    out.print(f"Allocation ({a.pool} {a.method} runs): mean |n_treatment − n_control| "
              f"{a.mean_abs_imbalance:.2f}, max {a.max_abs_imbalance}, unequal arms in "
              f"{_pct(a.share_unequal)} of trials.", markup=False)
