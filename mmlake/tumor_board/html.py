"""Static HTML for tumor-board pages: inline CSS, inline SVG plots, one tiny script.

Nothing is fetched from anywhere: a page opened from disk, mailed, or archived shows the same
thing. Every value is HTML-escaped; provenance travels as ``data-provenance`` JSON on the
element of each item. The script only shows that JSON in a side panel on click or hover, so a
page is complete without it.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mmlake.tumor_board.model import Figure, Section

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1f3a5f;color:#fff;padding:12px 20px}
header h1{margin:0;font-size:20px} header p{margin:4px 0 0;font-size:12px;opacity:.85}
main{max-width:1100px;margin:0 auto;padding:12px 20px 80px}
section{background:#fff;border:1px solid #d9dee5;border-radius:6px;margin:12px 0;padding:8px 14px}
h2{font-size:16px;margin:6px 0 8px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:0}
dt{color:#5a6472} dd{margin:0}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0}
caption{text-align:left;font-weight:600;padding:4px 0}
th,td{border-bottom:1px solid #e6e9ee;padding:3px 6px;text-align:left;vertical-align:top}
[data-provenance]{cursor:pointer} [data-provenance]:hover{background:#eef4ff}
.msg{color:#7a4b00;background:#fff7e6;border-left:3px solid #f0a020;padding:4px 8px;margin:6px 0}
.masked{color:#8a8f98;font-style:italic}
figure{margin:6px 0;display:inline-block} figcaption{font-size:12px;color:#5a6472}
#prov{position:fixed;right:12px;bottom:12px;width:420px;max-height:40%;overflow:auto;
background:#102033;color:#d8e6ff;font:12px monospace;padding:8px;border-radius:6px;
white-space:pre-wrap;display:none}
form label{display:block;margin:4px 0} input,textarea{width:100%;max-width:520px}
"""

SCRIPT = """
(function () {
  var panel = document.getElementById('prov');
  function show(el) {
    var raw = el.getAttribute('data-provenance');
    var text = raw;
    try { text = JSON.stringify(JSON.parse(raw), null, 2); } catch (e) { text = raw; }
    panel.textContent = text;
    panel.style.display = 'block';
  }
  var items = document.querySelectorAll('[data-provenance]');
  for (var i = 0; i < items.length; i++) {
    items[i].addEventListener('click', function (ev) { show(ev.currentTarget); });
    items[i].addEventListener('mouseenter', function (ev) { show(ev.currentTarget); });
  }
  document.body.setAttribute('data-provenance-ready', String(items.length));
})();
"""

MASKED_MARKERS = ("[REDACTED]", "***")


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def cell(value: Any) -> str:
    """A value, with masked and withheld values marked as such rather than left blank."""
    if value is None:
        return '<span class="masked">not available</span>'
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, datetime):
        text = value.isoformat()
    else:
        text = str(value)
    if any(m in text for m in MASKED_MARKERS):
        return f'<span class="masked">{esc(text)}</span>'
    return esc(text)


def svg_plot(fig: Figure, width: int = 320, height: int = 120) -> str:
    """A line plot of (days from index, value) as inline SVG, axes labelled with the ranges."""
    if not fig.points:
        return f'<p class="msg">{esc(fig.title)}: no values.</p>'
    xs = [x for x, _ in fig.points]
    ys = [y for _, y in fig.points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    pad = 24

    def sx(x: float) -> float:
        return pad + (x - x0) / ((x1 - x0) or 1) * (width - 2 * pad)

    def sy(y: float) -> float:
        return height - pad - (y - y0) / ((y1 - y0) or 1) * (height - 2 * pad)

    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in fig.points)
    return (
        f'<figure data-provenance="{esc(fig.prov.to_json())}" data-item="figure">'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{esc(fig.title)}">'
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fbfcfe"/>'
        f'<polyline fill="none" stroke="#1f6feb" stroke-width="1.5" points="{path}"/>'
        f'<text x="2" y="12" font-size="10">{y1:.0f} {esc(fig.unit)}</text>'
        f'<text x="2" y="{height - 12}" font-size="10">{y0:.0f}</text>'
        f'<text x="{pad}" y="{height - 2}" font-size="10">day {x0:.0f}</text>'
        f'<text x="{width - pad - 40}" y="{height - 2}" font-size="10">day {x1:.0f}</text>'
        f"</svg><figcaption>{esc(fig.title)} ({len(fig.points)} days, "
        "x: days from diagnosis)</figcaption></figure>"
    )


def render_section(sec: Section) -> str:
    parts = [f'<section id="{sec.id}" data-section="{sec.id}"><h2>{esc(sec.title)}</h2>']
    parts += [f'<p class="msg" data-message="{sec.id}">{esc(m)}</p>' for m in sec.messages]
    if sec.facts:
        parts.append("<dl>")
        for fact in sec.facts:
            prov = esc(fact.prov.to_json())
            parts.append(
                f'<dt>{esc(fact.label)}</dt><dd data-provenance="{prov}" data-item="fact">'
                f"{cell(fact.value)}</dd>"
            )
        parts.append("</dl>")
    for table in sec.tables:
        head = "".join(f"<th>{esc(c)}</th>" for c in table.columns)
        parts.append(f"<table><caption>{esc(table.caption)}</caption><tr>{head}</tr>")
        for values, prov in table.rows:
            tds = "".join(f"<td>{cell(v)}</td>" for v in values)
            parts.append(f'<tr data-provenance="{esc(prov.to_json())}" data-item="row">{tds}</tr>')
        parts.append("</table>")
    parts += [svg_plot(fig) for fig in sec.figures]
    parts.append("</section>")
    return "".join(parts)


def review_form(patient_key: str, generated_at: str, model_version: str | None) -> str:
    """The clinician checkpoint: posts to ``mmlake tumor-board serve`` (``/review``)."""
    return (
        '<section id="review" data-section="review"><h2>Clinician review</h2>'
        "<p>Record the board's decision. Submitting works when the pages are served with "
        "<code>mmlake tumor-board serve</code>; otherwise use <code>mmlake tumor-board review"
        "</code>. Decisions are stored with reviewer and time; nothing is automated.</p>"
        '<form method="post" action="/review">'
        f'<input type="hidden" name="patient_key" value="{esc(patient_key)}">'
        f'<input type="hidden" name="page_generated_at" value="{esc(generated_at)}">'
        f'<input type="hidden" name="risk_model_version" value="{esc(model_version or "")}">'
        '<label>Reviewer <input name="reviewer" required></label>'
        '<label>Decision <input name="decision" list="decisions" required></label>'
        '<datalist id="decisions"><option value="standard of care">'
        '<option value="refer to trial"><option value="targeted therapy">'
        '<option value="more work-up needed"><option value="discuss again"></datalist>'
        '<label>Comment <textarea name="comment" rows="3"></textarea></label>'
        '<button type="submit">Record review</button></form></section>'
    )


def page(
    patient_key: str,
    principal: str,
    generated_at: str,
    sections: Sequence[Section],
    model_version: str | None,
) -> str:
    body = "".join(render_section(s) for s in sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Tumor board - {esc(patient_key[:12])}</title><style>{CSS}</style></head>"
        f'<body data-patient-key="{esc(patient_key)}" data-principal="{esc(principal)}">'
        f"<header><h1>Tumor board evidence - patient {esc(patient_key[:16])}</h1>"
        f"<p>Rendered for <b>{esc(principal)}</b> at {esc(generated_at)} UTC. Evidence gathered "
        "for review; decisions rest with the board. Click or hover an item for its provenance."
        f'</p></header><main><p><a href="index.html">All patients</a></p>{body}'
        f"{review_form(patient_key, generated_at, model_version)}</main>"
        f'<pre id="prov" aria-live="polite"></pre><script>{SCRIPT}</script></body></html>'
    )


def index_page(principal: str, generated_at: str, entries: Sequence[dict[str, Any]]) -> str:
    rows = "".join(
        f'<tr><td><a href="{esc(e["file"])}">{esc(e["patient_key"][:16])}</a></td>'
        f"<td>{cell(e.get('cancer_type'))}</td><td>{cell(e.get('stage'))}</td>"
        f"<td>{cell(e.get('modalities'))}</td><td>{cell(e.get('risk'))}</td></tr>"
        for e in entries
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Tumor board</title><style>{CSS}</style></head><body>"
        f"<header><h1>Tumor board evidence pages</h1><p>Rendered for <b>{esc(principal)}</b> "
        f"at {esc(generated_at)} UTC - {len(entries)} patients.</p></header><main><section>"
        "<table><tr><th>Patient</th><th>Cancer type</th><th>Stage</th><th>Modalities</th>"
        f"<th>Risk</th></tr>{rows}</table></section></main></body></html>"
    )
