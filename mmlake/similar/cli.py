"""`mmlake similar`: search similar cases (default) and `mmlake similar build`.

Problems the user can fix (unknown patient key, a patient without imaging in imaging mode,
an empty cohort, no index yet) print one line and exit 2, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from mmlake import paths
from mmlake.console import console, summary_table
from mmlake.similar.model import DEFAULT_K, IMAGING, SimilarCaseError

T = TypeVar("T")

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
    where = f" within {cohort!r}" if cohort else ""
    summary_table(
        f"{len(found)} cases most similar to {patient} ({modality}{where})",
        ("rank", "patient_key", "cancer_type", "distance", "similarity", "contributions"),
        [
            (
                n.rank,
                n.neighbour_key,
                n.neighbour_cancer_type or "",
                f"{n.distance:.4f}",
                f"{n.similarity:.4f}",
                ", ".join(f"{m}={v:.3f}" for m, v in n.contribution_map.items()),
            )
            for n in found
        ],
    )
    if found:
        first = found[0]
        console.print(
            f"source: {first.source_table} version {first.source_version}", highlight=False
        )


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
