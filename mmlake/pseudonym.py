"""The secret behind ``patient_key``: where it comes from, and how it reaches the engines.

Silver replaces every patient identifier by a keyed hash (macros/privacy/pseudonymize.sql).
The key is never written in the repository or in compiled SQL. It comes from the environment
variable ``MMLAKE_PSEUDONYM_KEY``; when that is unset, ``mmlake`` keeps one random key per
lakehouse in ``<lakehouse>/_secrets/pseudonym.key`` (owner-only permissions), so a demo or a
laptop lakehouse gets stable keys across rebuilds without anyone choosing a secret. On a shared
deployment, set the variable from the team's secret store (on Databricks, a secret scope).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

ENV_VAR = "MMLAKE_PSEUDONYM_KEY"
KEY_FILE = Path("_secrets") / "pseudonym.key"


def pseudonym_key(lakehouse: Path) -> str:
    """The key from the environment, else the lakehouse's own key (created on first use)."""
    from_env = os.environ.get(ENV_VAR, "").strip()
    if from_env:
        return from_env
    path = lakehouse / KEY_FILE
    if path.is_file():
        return path.read_text(encoding="ascii").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    key = secrets.token_hex(32)
    # O_EXCL: two processes creating the key at once must not end up with different keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    return key
