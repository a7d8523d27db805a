"""Where the real third-party files live: ``shared/realdata`` beside the repository.

Resolved, so that a ``shared`` reached through a symlink gives the same absolute paths the
ingestion jobs record in ``_source_file``.
"""

from __future__ import annotations

from pathlib import Path

REALDATA = (Path(__file__).resolve().parents[1].parent / "shared" / "realdata").resolve()
