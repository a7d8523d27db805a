"""`mmlake tumor-board serve`: the pages over HTTP, with the review form accepted.

A small stdlib server for a laptop or a board-room screen: GET serves files from the output
folder (nothing outside it), POST /review appends the decision to the reviews Delta table.
It binds to localhost by default and has no authentication: it is a local tool, not a
deployment (on Databricks the same form would post to an app with workspace identity).
"""

from __future__ import annotations

import html
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from mmlake.tumor_board.reads import TumorBoardError
from mmlake.tumor_board.reviews import Review, parse_timestamp, record_review

MAX_BODY = 64 * 1024
# One Delta append at a time: concurrent form posts would otherwise race on the log.
_WRITE_LOCK = threading.Lock()


class BoardHandler(SimpleHTTPRequestHandler):
    """Static files from ``directory`` plus ``POST /review``."""

    lakehouse: Path

    def __init__(self, *args, lakehouse: Path, **kwargs) -> None:
        self.lakehouse = lakehouse
        super().__init__(*args, **kwargs)

    def _reply(self, status: int, text: str) -> None:
        body = (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Review</title>'
            f'</head><body><p>{html.escape(text)}</p><p><a href="index.html">All patients'
            "</a></p></body></html>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/review":
            self._reply(404, "not found")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._reply(413, "review too large")
            return
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode("utf-8")).items()}
        try:
            with _WRITE_LOCK:
                reviewed_at = record_review(
                    self.lakehouse,
                    Review(
                        patient_key=form.get("patient_key", ""),
                        reviewer=form.get("reviewer", ""),
                        decision=form.get("decision", ""),
                        comment=form.get("comment", ""),
                        page_generated_at=parse_timestamp(form.get("page_generated_at")),
                        risk_model_version=form.get("risk_model_version") or None,
                    ),
                )
        except TumorBoardError as error:
            self._reply(400, f"review not recorded: {error}")
            return
        self._reply(200, f"review recorded at {reviewed_at.isoformat()} UTC")


def make_server(out_dir: Path, lakehouse: Path, host: str, port: int) -> ThreadingHTTPServer:
    handler = partial(BoardHandler, directory=str(out_dir), lakehouse=lakehouse)
    return ThreadingHTTPServer((host, port), handler)
