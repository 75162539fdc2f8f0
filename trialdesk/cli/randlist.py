"""Allocation-list commands: ``randlist generate``, ``verify`` and ``simulate``.

Pure domain (no database): the unblinded statistician generates the sealed list and the
sites' emergency-envelope lists, publishes their commitments (sha256) before the first
patient, and compares designs by simulation before choosing one.
"""

from __future__ import annotations

import hashlib
import re
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from trialdesk.cli.base import (
    JsonOpt,
    ProtocolOpt,
    app,
    err,
    handles_errors,
    out,
    print_json,
)
from trialdesk.errors import AllocationError, InputRejected, TrialError
from trialdesk.protocol import DEFAULT_PROTOCOL, Protocol, load_protocol
from trialdesk.protocol.schema import RandomizationMethod
from trialdesk.randomization import (
    AllocationList,
    DesignEvaluation,
    Distribution,
    exact_block_predictability,
    generate_emergency_lists,
    generate_list,
    simulate_design,
)

randlist_app = typer.Typer(
    help="Generate, verify and evaluate sealed allocation lists (no database).",
    no_args_is_help=True)
app.add_typer(randlist_app, name="randlist")

#: above this many simulated trials, ``simulate`` shows a progress bar on stderr
PROGRESS_RUNS = 200
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class SimMethod(StrEnum):
    COMPLETE = "complete"
    BLOCKS = "blocks"
    MINIMIZATION = "minimization"


_METHODS = {SimMethod.COMPLETE: RandomizationMethod.COMPLETE,
            SimMethod.BLOCKS: RandomizationMethod.PERMUTED_BLOCKS,
            SimMethod.MINIMIZATION: RandomizationMethod.MINIMIZATION}


def _read_seed(seed: str) -> str:
    """The seed; ``-`` reads it from the first line of standard input (not the history)."""
    value = sys.stdin.readline().rstrip("\r\n") if seed == "-" else seed
    if not value:
        raise InputRejected("The seed is empty; give a long secret seed (--seed, or '-' to "
                            "read it from standard input).", field="seed")
    return value


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _refuse_existing(paths: list[Path], force: bool) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise TrialError(
            f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; a "
            "sealed list is never overwritten by accident. Choose another file name, or "
            "give --force if the existing list was never published.", field="out")


def _write(path: Path, text: str) -> str:
    """Write the list's canonical bytes; the sha256 of what was written."""
    data = text.encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise InputRejected(f"{path}: cannot write the list ({exc.strerror}).",
                            field="out") from None
    return _sha256(data)


def _list_summary(alist: AllocationList, path: Path, commitment: str) -> dict[str, Any]:
    return {"file": str(path), "label": alist.label, "protocol_id": alist.protocol_id,
            "protocol_sha256": alist.protocol_sha256, "method": alist.method.value,
            "commitment": commitment, "seed_fingerprint": alist.seed_fingerprint,
            "strata": list(alist.strata),
            "entries_per_stratum": {s: len(alist.entries_for(s)) for s in alist.strata}}


def _write_emergency(p: Protocol, seed: str, directory: Path, force: bool,
                     as_json: bool) -> list[dict[str, Any]]:
    lists = generate_emergency_lists(p, seed=seed)
    targets = {site: directory / f"{alist.label}.csv" for site, alist in lists.items()}
    _refuse_existing(list(targets.values()), force)
    written = []
    for site, alist in lists.items():
        commitment = _write(targets[site], alist.to_csv())
        written.append({"site": site, **_list_summary(alist, targets[site], commitment)})
        if not as_json:
            out.print(f"emergency list of site {escape(site)}: {escape(str(targets[site]))} "
                      f"({len(alist.entries)} envelopes in {len(alist.strata)} strata, "
                      f"{alist.method.value})\n"
                      f"  commitment sha256 {commitment}", soft_wrap=True)
    if not lists and not as_json:
        out.print(f"protocol {escape(p.protocol_id)} has no sites: no emergency lists")
    return written


def _minimization_refusal(p: Protocol, envelopes_written: bool) -> AllocationError:
    advice = ("The sites' emergency-envelope lists were written (above); run without --out."
              if envelopes_written else "Sealed emergency envelopes still need lists: give "
              "--emergency-dir DIR (without --out).")
    return AllocationError(
        f"Protocol {p.protocol_id} allocates by minimization, which uses no main list: each "
        "arm depends on the patients already allocated, so the server decides at "
        f"randomization time. No main list was written. {advice}", field="method")


@randlist_app.command("generate")
@handles_errors
def generate(
    protocol: Annotated[Path, typer.Option(
        "--protocol", "-p", help="Protocol file (YAML) the list is made for.")],
    seed: Annotated[str, typer.Option(
        "--seed", help="Secret seed ('-' reads it from standard input). Keep it sealed: "
                       "anyone holding it can regenerate the list.")],
    size: Annotated[int | None, typer.Option(
        "--size", min=1, help="Entries per stratum (at least; permuted blocks end with a "
                              "whole block). Required with --out.")] = None,
    out_file: Annotated[Path | None, typer.Option(
        "--out", help="Write the main list to this CSV file.")] = None,
    emergency_dir: Annotated[Path | None, typer.Option(
        "--emergency-dir", help="Also write one emergency-envelope list per site, "
                                "DIR/emergency-<site>.csv (the protocol's "
                                "emergency_envelopes_per_stratum).")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Overwrite existing list files.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Generate the sealed allocation list; print its commitment (sha256 of the file) to
    publish before the first patient. A minimization protocol has no main list (exit 1
    if --out is given), but --emergency-dir still writes the sites' envelope lists."""
    p = load_protocol(protocol)
    minimization = p.randomization.method is RandomizationMethod.MINIMIZATION
    if out_file is None and emergency_dir is None and not minimization:
        raise typer.BadParameter("give --out LIST.csv (and/or --emergency-dir DIR).",
                                 param_hint="'--out'")
    if out_file is not None and not minimization and size is None:
        raise typer.BadParameter("the main list needs --size N (entries per stratum).",
                                 param_hint="'--size'")
    secret = _read_seed(seed)

    if minimization:
        emergency = (_write_emergency(p, secret, emergency_dir, force, as_json)
                     if emergency_dir is not None else [])
        if out_file is None and emergency_dir is not None:
            if as_json:
                print_json({"main_list": None, "emergency_lists": emergency})
            else:
                out.print("minimization uses no main list: only the emergency lists were "
                          "written")
            return
        refusal = _minimization_refusal(p, envelopes_written=emergency_dir is not None)
        if emergency_dir is None:
            raise refusal
        if as_json:  # one JSON object: the lists written, and the refusal
            print_json({"main_list": None, "emergency_lists": emergency,
                        "error": refusal.to_dict()})
        else:
            err.print(f"[bold red]{refusal.code}[/]: {escape(refusal.message)}",
                      soft_wrap=True)
        raise typer.Exit(1)

    main = None
    if out_file is not None:
        assert size is not None
        alist = generate_list(p, seed=secret, size_per_stratum=size)
        _refuse_existing([out_file], force)
        if emergency_dir is not None:  # refuse before writing anything
            _refuse_existing([emergency_dir / f"emergency-{s.id}.csv" for s in p.sites], force)
        commitment = _write(out_file, alist.to_csv())
        main = _list_summary(alist, out_file, commitment)
        if not as_json:
            _show_main(alist, out_file, commitment)
    emergency = (_write_emergency(p, secret, emergency_dir, force, as_json)
                 if emergency_dir is not None else [])
    if as_json:
        print_json({"main_list": main, "emergency_lists": emergency})


def _show_main(alist: AllocationList, path: Path, commitment: str) -> None:
    out.print(f"wrote {escape(str(path))}: {escape(str(alist))}", soft_wrap=True)
    table = Table("stratum", "entries", "blocks", title="Entries per stratum (arms sealed)")
    for stratum in alist.strata:
        entries = alist.entries_for(stratum)
        table.add_row(escape(stratum), str(len(entries)),
                      str(entries[-1].block) if entries and entries[-1].block else "—")
    out.print(table)
    out.print(f"seed fingerprint {alist.seed_fingerprint}", soft_wrap=True)
    out.print(f"commitment sha256 {commitment}", soft_wrap=True)
    out.print("Publish the commitment before the first patient; keep the seed and the list "
              "sealed.", soft_wrap=True)


# --- verify ---------------------------------------------------------------------------


@randlist_app.command("verify")
@handles_errors
def verify(
    list_file: Annotated[Path, typer.Argument(help="Allocation list CSV to check.")],
    commitment: Annotated[str, typer.Option(
        "--commitment", help="The published sha256 (64 hex digits).")],
    protocol: Annotated[Path | None, typer.Option(
        "--protocol", "-p", help="Also check that the list was made for this protocol "
                                 "file.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a list against its published commitment: exit 0 if it matches, exit 1
    (COMMITMENT_MISMATCH) if the list is not the one that was published."""
    expected = commitment.strip().lower()
    if not _HEX64.match(expected):
        raise InputRejected(f"--commitment must be a sha256: 64 hex digits, got "
                            f"{commitment!r}.", field="commitment")
    try:
        text = list_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InputRejected(f"{list_file}: cannot read the list ({reason}).",
                            field="allocation_list") from None
    alist = AllocationList.from_csv(text)
    alist.verify(expected)
    p = load_protocol(protocol) if protocol is not None else None
    if p is not None and alist.protocol_sha256 != p.content_sha256:
        raise AllocationError(
            f"{list_file} matches its commitment but was generated for protocol "
            f"{alist.protocol_id} sha256 {alist.protocol_sha256}, not for {protocol} "
            f"({p.protocol_id} v{p.protocol_version}, sha256 {p.content_sha256}): "
            "regenerate the list from the protocol in force.", field="protocol_sha256")
    if as_json:
        print_json({"matches": True, "file": str(list_file), "commitment": expected,
                    "label": alist.label, "protocol_id": alist.protocol_id,
                    "protocol_sha256": alist.protocol_sha256,
                    "protocol_matches": True if p is not None else None})
        return
    out.print(f"matches: {escape(str(list_file))} is the published '{escape(alist.label)}' "
              f"list of {escape(alist.protocol_id)} (sha256 {expected})", soft_wrap=True)
    if p is not None:
        out.print(f"made for {escape(str(protocol))} (sha256 {p.content_sha256})",
                  soft_wrap=True)


# --- simulate -------------------------------------------------------------------------


def _block_sizes(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    parts = [part.strip() for part in text.split(",")]
    if not parts or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise typer.BadParameter(f"expected positive whole numbers like 4 or 4,6; got "
                                 f"{text!r}.", param_hint="'--block-sizes'")
    return tuple(int(part) for part in parts)


def _exact(p: Protocol, evaluation: DesignEvaluation) -> float | None:
    """Exact predictability of a fixed block size with equal arms (else None)."""
    weights = set(p.randomization.ratio.values())
    sizes = evaluation.block_sizes
    arms = len(p.arm_ids)
    if (evaluation.method is not RandomizationMethod.PERMUTED_BLOCKS or len(sizes) != 1
            or len(weights) != 1 or sizes[0] % arms):
        return None
    return exact_block_predictability(sizes[0], arms)


@randlist_app.command("simulate")
@handles_errors
def simulate(
    protocol: ProtocolOpt = DEFAULT_PROTOCOL,
    method: Annotated[SimMethod | None, typer.Option(
        "--method", help="Design to simulate (default: the protocol's).")] = None,
    block_sizes: Annotated[str | None, typer.Option(
        "--block-sizes", help="Permuted blocks: sizes, e.g. 4 or 4,6 (default: the "
                              "protocol's).")] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="Patients per simulated trial.")] = 60,
    runs: Annotated[int, typer.Option("--runs", min=1, help="Simulated trials.")] = 1000,
    seed: Annotated[str, typer.Option(
        "--seed", help="Simulation seed (same seed: same patients, same result).")
    ] = "trialdesk-simulation",
    as_json: JsonOpt = False,
) -> None:
    """Compare designs before the trial: imbalance at the end of simulated trials, and
    how often a recruiter could guess the next arm (convergence strategy)."""
    p = load_protocol(protocol)
    chosen = _METHODS[method] if method is not None else p.randomization.method
    sizes = _block_sizes(block_sizes)
    if sizes is not None and chosen is not RandomizationMethod.PERMUTED_BLOCKS:
        raise typer.BadParameter(f"block sizes apply only to --method blocks, not "
                                 f"{chosen.value}.", param_hint="'--block-sizes'")
    if chosen is RandomizationMethod.PERMUTED_BLOCKS and not (sizes or p.randomization
                                                                .block_sizes):
        raise typer.BadParameter(f"protocol {p.protocol_id} has no block sizes: give "
                                 "--block-sizes.", param_hint="'--block-sizes'")

    def run() -> DesignEvaluation:
        return simulate_design(p, method=chosen, block_sizes=sizes, n=n, runs=runs,
                               seed=seed)

    if runs > PROGRESS_RUNS and not as_json:
        # simulate_design reports no progress, so the bar pulses while it runs
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                      TimeElapsedColumn(), console=err, transient=True) as progress:
            progress.add_task(f"simulating {runs} trials of {n} patients", total=None)
            evaluation = run()
    else:
        evaluation = run()
    exact = _exact(p, evaluation)
    if as_json:
        print_json({**evaluation.to_dict(), "seed": seed,
                    "exact_block_predictability": exact})
        return
    _show_evaluation(evaluation, seed, exact)


def _show_evaluation(e: DesignEvaluation, seed: str, exact: float | None) -> None:
    blocks = f", blocks {', '.join(map(str, e.block_sizes))}" if e.block_sizes else ""
    table = Table("imbalance", "mean", "±95%", "p50", "p95", "max",
                  title=f"{escape(e.protocol_id)}: {e.method.value}{blocks}, n = {e.n}, "
                        f"{e.runs} simulated trials (seed {escape(seed)})",
                  caption="imbalance: max − min over arms of count / ratio weight")

    def row(label: str, d: Distribution) -> None:
        table.add_row(label, f"{d.mean:.3f}", f"{d.half_width:.3f}", f"{d.p50:g}",
                      f"{d.p95:g}", f"{d.max:g}")

    row("overall", e.overall_imbalance)
    row("within strata (worst stratum)", e.stratum_imbalance)
    for factor, d in e.marginal_imbalance.items():
        row(f"{escape(factor)} levels (worst level)", d)
    if len(e.marginal_imbalance) > 1:
        row("any factor level (worst)", e.max_marginal_imbalance)
    out.print(table)
    shares = ", ".join(f"{arm} {share:.3f}" for arm, share in e.arm_fractions.items())
    out.print(f"mean share per arm: {escape(shares)}")
    line = (f"correct_guess_probability {e.correct_guess_probability:.4f} "
            f"(±{e.correct_guess_half_width:.4f}, 95% Monte-Carlo)")
    if exact is not None:
        line += (f"; exact_block_predictability {exact:.4f} (full blocks of "
                 f"{e.block_sizes[0]}; blocks cut at the end of a stratum lower the "
                 "simulated value)")
    out.print(line, soft_wrap=True)
