"""``qc sampling plan``: how many units of a lot to inspect, and how many defects to accept."""

from __future__ import annotations

import json

import click

from qc.errors import KipimoError
from qc.sampling import Inspection, single_sampling_plan
from qc.sampling_tables import LEVELS
from service.cli.base import cli


@cli.group()
def sampling() -> None:
    """Lot sampling by attributes (ISO 2859-1 / ANSI/ASQ Z1.4 single sampling)."""


@sampling.command("plan")
@click.option("--lot-size", type=int, required=True, help="Number of units in the lot.")
@click.option(
    "--level",
    default="II",
    show_default=True,
    type=click.Choice(LEVELS, case_sensitive=False),
    help="Inspection level: general I, II, III or special S-1..S-4.",
)
@click.option("--aql", required=True, help="Acceptance quality limit, e.g. 1.0 or 0.65.")
@click.option(
    "--inspection",
    default="normal",
    show_default=True,
    type=click.Choice([i.value for i in Inspection], case_sensitive=False),
    help="Inspection severity given by the switching rules.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a sentence.")
def plan(lot_size: int, level: str, aql: str, inspection: str, as_json: bool) -> None:
    """Single-sampling plan: code letter, sample size, Ac and Re.

    Example: qc sampling plan --lot-size 1000 --aql 1.0  ->  J, inspect 80, Ac 2, Re 3.
    """
    try:
        p = single_sampling_plan(lot_size, aql, level=level, inspection=inspection)
    except KipimoError as exc:
        raise click.UsageError(str(exc)) from None
    if as_json:
        d = p.to_dict()
        d["note"] = "100 % inspection" if p.hundred_percent else None
        click.echo(json.dumps(d, indent=2))
        return
    click.echo(f"Code letter:  {p.code_letter}" + (
        f" (plan from row {p.plan_letter})" if p.plan_letter != p.code_letter else ""))
    if p.hundred_percent:
        click.echo(f"Sample size:  {p.sample_size} = the whole lot (100 % inspection)")
    else:
        click.echo(f"Sample size:  {p.sample_size} of {p.lot_size}")
    click.echo(f"Accept (Ac):  {p.accept}  - accept the lot with {p.accept} or fewer nonconforming")
    click.echo(f"Reject (Re):  {p.reject}  - reject it with {p.reject} or more")
    click.echo(f"({p.inspection} inspection, level {p.level}, AQL {p.aql}, ISO 2859-1)")
