"""Where things live: the one place that resolves the lakehouse root and raw-input folders.

Every command accepts an explicit folder, falls back to an environment variable, then to a
default under the current directory, so a demo, a test and a cluster job can each point the same
code at their own storage without editing configuration files.
"""

from __future__ import annotations

import os
from pathlib import Path

LAKEHOUSE_ENV = "LAKEHOUSE_ROOT"
RAW_ENV = "MMLAKE_RAW_DIR"
DEFAULT_LAKEHOUSE = Path("lakehouse")
DEFAULT_RAW = Path("data/raw")
LAYERS = ("bronze", "silver", "gold")


def project_root() -> Path:
    """The repository root (holds ``dbt_project.yml``); the package is installed editable."""
    return Path(__file__).resolve().parent.parent


def lakehouse_root(explicit: Path | None = None) -> Path:
    """Absolute lakehouse root: ``explicit`` > ``$LAKEHOUSE_ROOT`` > ``./lakehouse``."""
    chosen = explicit or (
        Path(os.environ[LAKEHOUSE_ENV]) if os.environ.get(LAKEHOUSE_ENV) else None
    )
    return (chosen or DEFAULT_LAKEHOUSE).expanduser().resolve()


def raw_root(explicit: Path | None = None) -> Path:
    """Absolute raw-input folder: ``explicit`` > ``$MMLAKE_RAW_DIR`` > ``./data/raw``."""
    return _resolve(explicit, RAW_ENV, DEFAULT_RAW)


def _resolve(explicit: Path | None, env: str, default: Path) -> Path:
    chosen = explicit or (Path(os.environ[env]) if os.environ.get(env) else default)
    return chosen.expanduser().resolve()


def layer_path(layer: str, table: str, root: Path | None = None) -> Path:
    """``<lakehouse>/<layer>/<table>``: where a Delta table of a layer is stored."""
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}; expected one of {', '.join(LAYERS)}")
    return lakehouse_root(root) / layer / table
