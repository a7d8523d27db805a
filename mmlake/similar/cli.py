"""`mmlake similar`: search similar cases (default) and `mmlake similar build`.

Problems the user can fix (unknown patient key, a patient without imaging in imaging mode,
an empty cohort, no index yet) print one line and exit 2, never a traceback.

Patient keys are 64-character pseudonyms that users copy into the next command, so the result
never shortens them: the table is drawn as wide as whole keys need (a narrow terminal wraps its
lines), and ``--format tsv`` / ``--format json`` print one plain line per case for scripts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.measure import Measurement
from rich.table import Table

from mmlake import paths
from mmlake.console import console, summary_table
from mmlake.similar.model import DEFAULT_K, IMAGING, Neighbour, SimilarCaseError

T = TypeVar("T")

COLUMNS = ("rank", "patient_key", "cancer_type", "distance", "similarity", "contributions")


class OutputFormat(StrEnum):
    """How the similar cases are printed."""

    TABLE = "table"
    TSV = "tsv"
    JSON = "json"


app = typer.Typer(
    help="Similar-case search: imaging (HNSW over embeddings) or multimodal.",
    no_args_is_help=False,
)

LakehouseOpt = Annotated[
    Path | None,
    typer.Option("--lakehouse", help="Lakehouse root. Default: $LAKEHOUSE_ROOT, else ./lakehouse."),
]


def _run(action: Callable[[], T]) -> T:
    try:
        return action()
    except SimilarCaseError as error:
        console.print(f"[red]error:[/red] {error}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None


@app.callback(invoke_without_command=True)
def similar(
    ctx: typer.Context,
    patient: Annotated[
        str | None, typer.Option("--patient", help="Patient key (pseudonym) to find cases like.")
    ] = None,
    modality: Annotated[str, typer.Option("--modality", help="imaging | multimodal.")] = IMAGING,
    cohort: Annotated[
        str | None,
        typer.Option("--cohort", help='Restrict to a cancer type, e.g. "glioblastoma".'),
    ] = None,
    k: Annotated[
        int, typer.Option("-k", "--k", min=1, help="Number of similar cases.")
    ] = DEFAULT_K,
    output: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            help="table, or one line per case: tsv (with a header) or json (JSON lines).",
        ),
    ] = OutputFormat.TABLE,
    lakehouse: LakehouseOpt = None,
) -> None:
    """Top-k similar cases of one patient, with distances and per-modality contributions."""
    if ctx.invoked_subcommand is not None:
        return
    if patient is None:
        console.print("[red]error:[/red] --patient KEY is required (or run `mmlake similar build`)")
        raise typer.Exit(2)
    from mmlake.similar.search import search

    root = paths.lakehouse_root(lakehouse)
    found = _run(lambda: search(root, patient, modality=modality, cohort=cohort, k=k))
    if output is OutputFormat.JSON:
        for n in found:
            typer.echo(json.dumps(_record(n)))
        return
    if output is OutputFormat.TSV:
        typer.echo("\t".join(COLUMNS))
        for n in found:
            typer.echo("\t".join(_cells(n)))
        return
    where = f" within {cohort!r}" if cohort else ""
    _print_table(f"{len(found)} cases most similar to {patient} ({modality}{where})", found)
    if found:
        first = found[0]
        console.print(
            f"source: {first.source_table} version {first.source_version}", highlight=False
        )


def _record(n: Neighbour) -> dict[str, object]:
    """One case as JSON: the table's columns, numbers unrounded, contributions as an object."""
    return {
        "rank": n.rank,
        "patient_key": n.neighbour_key,
        "cancer_type": n.neighbour_cancer_type,
        "distance": n.distance,
        "similarity": n.similarity,
        "contributions": n.contribution_map,
    }


def _cells(n: Neighbour) -> list[str]:
    """One case as the table and the TSV show it."""
    return [
        str(n.rank),
        n.neighbour_key,
        n.neighbour_cancer_type or "",
        f"{n.distance:.4f}",
        f"{n.similarity:.4f}",
        ", ".join(f"{m}={v:.3f}" for m, v in n.contribution_map.items()),
    ]


def _print_table(title: str, found: Sequence[Neighbour]) -> None:
    """The cases as a table that never cuts a key.

    rich fits a table to the terminal by shortening cells ("2d7116…"), which makes a key
    useless to copy. The key column does not wrap, and the table is drawn at least as wide as
    its narrowest layout with whole keys, even when that is wider than the terminal (which
    then wraps the lines). The title goes on its own line, unwrapped, as it holds a key too.
    """
    table = Table(show_lines=False)
    for name in COLUMNS:
        table.add_column(
            name, justify="right" if name == "rank" else "left", no_wrap=name == "patient_key"
        )
    for n in found:
        table.add_row(*_cells(n))
    unbounded = console.options.update_width(10_000)
    needed = Measurement.get(console, unbounded, table).minimum
    console.print(title, soft_wrap=True, highlight=False)
    width = console.width  # print(width=...) is capped at the console's width: widen it
    console.width = max(width, needed)
    try:
        console.print(table, crop=False)
    finally:
        console.width = width


@app.command()
def build(
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="Neighbours per patient.")] = DEFAULT_K,
    force: Annotated[bool, typer.Option(help="Rebuild the index even if it is current.")] = False,
    lakehouse: LakehouseOpt = None,
) -> None:
    """Build the HNSW index (reused while gold is unchanged) and write gold similar_cases."""
    from mmlake.similar.gold import build as build_all

    root = paths.lakehouse_root(lakehouse)
    result = _run(lambda: build_all(root, k, force=force))
    info = result.index
    state = "reused" if info.reused else "built"
    console.print(
        f"index {state}: {info.n_vectors:,} vectors ({info.dim}-d, cosine) from "
        f"gold.imaging_embeddings version {info.source_version} -> {info.path}",
        highlight=False,
    )
    summary_table(
        f"gold similar_cases -> {result.path}",
        ("mode", "rows", "source_version"),
        [(mode, n, result.versions[mode]) for mode, n in result.rows.items()],
    )
