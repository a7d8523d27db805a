"""`mmlake tumor-board`: evidence pages, the clinician review, and a local server for both.

Errors the user can act on (unknown patient key, empty cohort, refused read, missing
similar-case index) are one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmlake import paths
from mmlake.console import console

app = typer.Typer(
    help="Tumor-board evidence pages per patient, rendered for a principal, with provenance.",
    invoke_without_command=True,
    no_args_is_help=False,
)

LakehouseOpt = Annotated[
    Path | None,
    typer.Option("--lakehouse", help="Lakehouse root. Default: $LAKEHOUSE_ROOT, else ./lakehouse."),
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@app.callback()
def pages(
    ctx: typer.Context,
    patient: Annotated[
        list[str] | None, typer.Option("--patient", help="Patient key (repeatable).")
    ] = None,
    all_patients: Annotated[
        bool, typer.Option("--all", help="Every patient the principal can see.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder. Default: LAKEHOUSE/reports/tumor_board."),
    ] = None,
    principal: Annotated[
        str | None,
        typer.Option("--as", help="Principal to render for (seeds/governance/principals.csv)."),
    ] = None,
    lakehouse: LakehouseOpt = None,
) -> None:
    """Write one static HTML evidence page per patient plus index.html, as PRINCIPAL.

    Reads go through the governed consumer views (masks and row filters of the principal's
    groups apply, each read is audited) and the render itself is audited. A missing
    similar-case index still renders the pages, says so on them, and exits 2.
    """
    if ctx.invoked_subcommand is not None:
        return
    from mmlake.tumor_board.pages import MISSING_INDEX, default_output, render_pages
    from mmlake.tumor_board.reads import TumorBoardError

    if not principal:
        raise _fail("--as PRINCIPAL is required")
    if not patient and not all_patients:
        raise _fail("give --patient KEY or --all")
    root = paths.lakehouse_root(lakehouse)
    target = out or default_output(root)
    try:
        pages = render_pages(root, principal, None if all_patients else patient, target)
    except TumorBoardError as error:
        raise _fail(str(error)) from error
    console.print(
        f"{len(pages)} tumor-board pages for {principal} in {target} (index: {pages.index})"
    )
    if pages.missing_index:
        raise _fail(MISSING_INDEX)


@app.command()
def review(
    patient: Annotated[str, typer.Option("--patient", help="Patient key.")],
    decision: Annotated[str, typer.Option("--decision", help="The board's decision.")],
    reviewer: Annotated[str, typer.Option("--as", help="Reviewing principal.")],
    comment: Annotated[str, typer.Option("--comment", help="Why, in a sentence.")] = "",
    page_generated_at: Annotated[
        str | None, typer.Option(help="Render time of the page reviewed (ISO, UTC).")
    ] = None,
    risk_model_version: Annotated[
        str | None, typer.Option(help="Risk model version shown on that page.")
    ] = None,
    lakehouse: LakehouseOpt = None,
) -> None:
    """Record a reviewer's decision in LAKEHOUSE/clinical/tumor_board_reviews (Delta)."""
    from mmlake.tumor_board.reads import TumorBoardError
    from mmlake.tumor_board.reviews import Review, parse_timestamp, record_review, reviews_path

    root = paths.lakehouse_root(lakehouse)
    try:
        reviewed_at = record_review(
            root,
            Review(
                patient_key=patient,
                reviewer=reviewer,
                decision=decision,
                comment=comment,
                page_generated_at=parse_timestamp(page_generated_at),
                risk_model_version=risk_model_version,
            ),
        )
    except TumorBoardError as error:
        raise _fail(str(error)) from error
    console.print(f"review recorded at {reviewed_at.isoformat()} in {reviews_path(root)}")


@app.command()
def serve(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder of pages. Default: LAKEHOUSE/reports/tumor_board."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to bind (local only by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port.")] = 8765,
    lakehouse: LakehouseOpt = None,
) -> None:
    """Serve the pages and accept their review form (POST /review) until interrupted."""
    from mmlake.tumor_board.pages import default_output
    from mmlake.tumor_board.serve import make_server

    root = paths.lakehouse_root(lakehouse)
    folder = out or default_output(root)
    if not (folder / "index.html").is_file():
        raise _fail(f"no pages in {folder}: run `mmlake tumor-board --all --as PRINCIPAL` first")
    server = make_server(folder, root, host, port)
    console.print(f"serving {folder} at http://{host}:{server.server_address[1]}/index.html")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        server.server_close()
