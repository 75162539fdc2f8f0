"""Design commands: ``design boundaries`` (group-sequential efficacy boundaries)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from trialdesk.analysis.boundaries import TYPE_LABELS, group_sequential_boundaries
from trialdesk.cli.base import JsonOpt, app, handles_errors, out, print_json
from trialdesk.errors import DesignError

design_app = typer.Typer(help="Trial design: group-sequential boundaries for interim analyses.",
                         no_args_is_help=True)
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
