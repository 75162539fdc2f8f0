"""``demo seed``: load a simulated trial into the demo database (``make run`` calls it)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from trialdesk.cli.base import JsonOpt, app, err, handles_errors, out, print_json

demo_app = typer.Typer(help="Demonstration data (TRIALDESK_DEMO=1 only).", no_args_is_help=True)
app.add_typer(demo_app, name="demo")


@demo_app.command("seed")
@handles_errors
def seed(
    patients: Annotated[int, typer.Option("--patients", min=1, max=500,
                                          help="Randomized patients (RUMCESS: 30).")] = 30,
    seed_value: Annotated[int, typer.Option("--seed", help="Seed of the virtual patients.")
                          ] = 2013,
    as_json: JsonOpt = False,
) -> None:
    """Seed a simulated trial ending today through the web app's services: screenings
    (some not enrolled), consent, randomization from the sealed list, MSC product and
    infusion, daily forms, adverse events, vital status. Does nothing if already seeded."""
    from trialdesk.cli.web import setup_django

    setup_django()
    from django.core.exceptions import ImproperlyConfigured

    from trialdesk.web.core.protocol_access import current_protocol
    from trialdesk.web.demo_seed import seed_trial

    try:
        if as_json:
            report = seed_trial(current_protocol(), patients=patients, seed=seed_value)
        else:
            with Progress(TextColumn("seeding the demo trial"), BarColumn(),
                          MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                          transient=True) as bar:
                task = bar.add_task("seed", total=None)
                report = seed_trial(current_protocol(), patients=patients, seed=seed_value,
                                    progress=lambda done, total: bar.update(
                                        task, completed=done, total=total))
    except ImproperlyConfigured as exc:
        if as_json:
            print(json.dumps({"error": {"code": "DEMO_ONLY", "field": None,
                                        "message": str(exc)}}))
        else:
            err.print(f"[bold red]DEMO_ONLY[/]: {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    if as_json:
        print_json(report.to_dict())
        return
    out.print(str(report), soft_wrap=True, markup=False)
