"""The drift report on disk: JSON for machines, one self-contained HTML page and two PNG charts.

The JSON is the interface (dashboards, checks, the MLflow artifact); the HTML is what a person
opens: it embeds the charts as data URIs so it survives being mailed or attached to a ticket,
and escapes every value, since feature names and categories come from data.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ml.drift.compute import MAJOR, MODERATE, PSI_MAJOR, PSI_MODERATE, STABLE

TOP_FEATURES = 20  # bars in the PSI chart: the features worth a look, not all hundred
_COLOURS = {STABLE: "#4c9a2a", MODERATE: "#e0a100", MAJOR: "#c0392b"}
_NA_COLOUR = "#999999"


@dataclass(frozen=True)
class ReportPaths:
    json: Path
    html: Path
    psi_png: Path
    availability_png: Path

    def all(self) -> list[Path]:
        return [self.json, self.html, self.psi_png, self.availability_png]


def write_report(report: dict[str, object], directory: Path) -> ReportPaths:
    """Write drift.json, drift_psi.png, drift_availability.png and drift.html in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = ReportPaths(
        json=directory / "drift.json",
        html=directory / "drift.html",
        psi_png=directory / "drift_psi.png",
        availability_png=directory / "drift_availability.png",
    )
    paths.json.write_text(
        json.dumps(report, indent=2, default=_json_default, allow_nan=False) + "\n", "utf-8"
    )
    psi_chart(report["features"], paths.psi_png)
    availability_chart(report["availability"], paths.availability_png)
    paths.html.write_text(render_html(report, paths), encoding="utf-8")
    return paths


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def psi_chart(features: list[dict[str, object]], path: Path) -> None:
    """Horizontal bars of the largest PSIs, coloured by status, with the two band lines."""
    top = [f for f in features if f["psi"] is not None][:TOP_FEATURES]
    fig = Figure(figsize=(9, 0.32 * max(len(top), 4) + 1.4), dpi=110)
    ax = fig.add_subplot()
    names = [str(f["feature"]) for f in reversed(top)]
    values = [float(f["psi"]) for f in reversed(top)]
    colours = [_COLOURS.get(str(f["status"]), _NA_COLOUR) for f in reversed(top)]
    ax.barh(names, values, color=colours)
    ax.axvline(PSI_MODERATE, color=_COLOURS[MODERATE], linestyle="--", label="moderate (0.10)")
    ax.axvline(PSI_MAJOR, color=_COLOURS[MAJOR], linestyle="--", label="major (0.25)")
    ax.set_xlim(0, max([*values, PSI_MAJOR]) * 1.15)
    ax.set_xlabel("PSI (reference vs current, patients with the modality)")
    ax.set_title(f"Top {len(top)} features by PSI")
    ax.tick_params(axis="y", labelsize=8)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def availability_chart(availability: list[dict[str, object]], path: Path) -> None:
    """Reference vs current availability rate per modality; flagged modalities are marked."""
    fig = Figure(figsize=(8, 4), dpi=110)
    ax = fig.add_subplot()
    names = [str(a["modality"]) for a in availability]
    x = np.arange(len(names))
    ref = [float(a["reference_rate"]) for a in availability]
    cur = [float(a["current_rate"]) for a in availability]
    ax.bar(x - 0.2, ref, width=0.4, label="reference", color="#5b7db1")
    ax.bar(x + 0.2, cur, width=0.4, label="current", color="#e07b39")
    for i, item in enumerate(availability):
        if item["flagged"]:
            ax.annotate(
                f"{float(item['difference']):+.2f}",
                (x[i], max(ref[i], cur[i]) + 0.03),
                ha="center",
                color=_COLOURS[MAJOR],
                fontweight="bold",
            )
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("share of patients with the modality")
    ax.set_title("Modality availability (flagged differences annotated)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: object, digits: int = 3) -> str:
    return "&ndash;" if value is None else _e(f"{float(value):.{digits}f}")


def _badge(status: object) -> str:
    colour = _COLOURS.get(str(status), _NA_COLOUR)
    return f'<span class="badge" style="background:{colour}">{_e(status)}</span>'


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: dict[str, object], paths: ReportPaths) -> str:
    """One page: verdict, what was compared, availability, label, then every feature's PSI."""
    ref, cur, summary = report["reference"], report["current"], report["summary"]
    thresholds = report["thresholds"]
    compared = _table(
        ["", "gold version (patient_multimodal)", "patients", "training run"],
        [
            ["reference", _e(ref["gold_version"]), _e(ref["rows"]), _e(ref["run_id"] or "-")],
            ["current", _e(cur["gold_version"]), _e(cur["rows"]), "-"],
        ],
    )
    availability = _table(
        ["modality", "reference rate", "current rate", "difference", "PSI", "status"],
        [
            [
                _e(a["modality"]),
                _num(a["reference_rate"]),
                _num(a["current_rate"]),
                _e(f"{float(a['difference']):+.3f}") + (" &#9873;" if a["flagged"] else ""),
                _num(a["psi"]),
                _badge(a["status"]),
            ]
            for a in report["availability"]
        ],
    )
    label = report["label"]
    if "reference_rate" in label:
        label_html = _table(
            ["reference positive rate", "current positive rate", "difference", "PSI", "status"],
            [
                [
                    _num(label["reference_rate"]),
                    _num(label["current_rate"]),
                    _e(f"{float(label['difference']):+.3f}")
                    + (" &#9873;" if label["flagged"] else ""),
                    _num(label["psi"]),
                    _badge(label["status"]),
                ]
            ],
        )
    else:
        label_html = f"<p>Not computed: {_e(label.get('note', ''))}</p>"
    features = _table(
        [
            "feature",
            "modality",
            "kind",
            "PSI",
            "noise (99%)",
            "status",
            "n ref",
            "n cur",
            "largest bin shift",
        ],
        [_feature_row(f) for f in report["features"]],
    )
    schema = report["schema"]
    schema_html = ""
    if schema["only_reference"] or schema["only_current"]:
        schema_html = (
            "<h2>Schema changes (not compared)</h2><p>Only in reference: "
            f"{_e(', '.join(schema['only_reference']) or '-')}<br>Only in current: "
            f"{_e(', '.join(schema['only_current']) or '-')}</p>"
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Drift report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1200px; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }}
th {{ background: #f0f0f0; }}
.badge {{ color: #fff; padding: 0.1em 0.5em; border-radius: 0.6em; font-size: 0.85em; }}
.muted {{ color: #777; }} img {{ max-width: 100%; }}
</style></head><body>
<h1>Drift report {_badge(report["overall"])}</h1>
<p class="muted">Generated {_e(report["generated_at"])}. Thresholds: PSI &lt;
{_e(thresholds["psi_moderate"])} stable, &lt; {_e(thresholds["psi_major"])} moderate, otherwise
major; availability rate difference &ge; {_e(thresholds["availability_diff_flag"])} or label
rate difference &ge; {_e(thresholds["label_diff_flag"])} flagged (&#9873;, at least moderate).
Overall status is the worst item.</p>
{compared}
<p>{_e(summary["n_features"])} features compared; PSI max {_num(summary["psi_max"])},
mean {_num(summary["psi_mean"])}; {_e(summary["n_features_major"])} major,
{_e(summary["n_features_moderate"])} moderate
({_e(summary["n_features_flagged_within_noise"])} of those within sampling noise).</p>
<h2>Modality availability</h2>
{availability}
{_image(paths.availability_png, "availability per modality")}
<h2>Label (progression rate among labelled patients)</h2>
{label_html}
<h2>Features (PSI among patients who have the modality)</h2>
{_image(paths.psi_png, "top features by PSI")}
<p class="muted">"noise (99%)": the PSI two samples of this size exceed by chance only 1% of
the time; a flagged PSI below it (marked ~) may be sampling noise.</p>
{features}
{schema_html}
</body></html>
"""


def _feature_row(item: dict[str, object]) -> list[str]:
    shift = item.get("largest_shift")
    shift_html = (
        f"{_e(shift['bin'])}: {_num(shift['reference'])} &rarr; {_num(shift['current'])}"
        if shift
        else _e(item.get("note", ""))
    )
    noise = _num(item["noise_psi"])
    if item["within_noise"] and item["status"] != STABLE:
        noise += " ~"
    return [
        _e(item["feature"]),
        _e(item["modality"]),
        _e(item["kind"]),
        _num(item["psi"]),
        noise,
        _badge(item["status"]),
        _e(item["n_reference"]),
        _e(item["n_current"]),
        shift_html,
    ]
