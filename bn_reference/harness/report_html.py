"""The report as one self-contained HTML page (``--bn-report out.html``, ``bn-props check
--report out.html``, and ``docs/conformance.html``): a heat map of the worst err/bound per
property x subject x dtype, each cell clickable for what it covered and, when it failed, the
law, the worst element, the inputs the subject received and the repro script.

Standard library only (``html.escape``, ``json``): the CSS, the script and the colour scale
(an inline SVG) are in the file; it fetches nothing, so it opens offline, from CI artifacts
and from a mail attachment alike.

Two steps, so other reports can use the page: ``from_report`` turns a report dict
(``report.build``, the ``--bn-report`` JSON) into a *page model*, and ``page`` renders a
model. The model (plain data)::

    {
      "title": str, "intro": [str],                 # paragraphs, plain text
      "header": [[label, text]],                    # the run: created, profile, seed, versions
      "subjects": [{"name", "group", "api", "version", "dtypes": [...], "contract"}],
      "columns": [{"subject", "dtype"}],            # heat-map columns, in order; dtype may be None
      "rows": [{"key", "label", "law"}],            # heat-map rows (properties), in order
      "cells": [{"row", "col", "mark", "ratio", "examples", "covered": [...], "nodeid",
                 "property", "subject", "dtype", "outcome", "note", "failure"}],
      "lists": [{"title", "text", "items": [{"i": cell index, "label", "why"}]}],  # the failures, the findings
      "not_run": [{"subject", "why"}],              # optional: subjects the run left out, said so
    }

``mark`` is one of ``MARKS``; ``note`` is a known deviation's cause (or a skip's reason);
``failure`` is the report's failure record plus ``repro_text`` (the repro script's text) when
it could be read.
"""
from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

__all__ = ["MARKS", "DTYPES", "split_property", "row_key", "cell_item", "from_report", "page", "ratio_colour"]

# mark -> (glyph, words); the legend's order
MARKS = {
    "pass": ("", "pass (colour: worst err/bound)"),
    "fail": ("✗", "FAIL: a law broken, no known cause"),
    "error": ("E", "error outside the property (setup, a crash)"),
    "deviation": ("D", "known deviation (its cause recorded)"),
    "refusal": ("R", "declared refusal (an input refused by design)"),
    "xpass": ("!", "XPASS: a known deviation no longer reproduces"),
    "skip": ("·", "skipped: the law does not apply"),
}
DTYPES = ("float32", "float64", "float16", "bfloat16")
_SHORT = {"float32": "f32", "float64": "f64", "float16": "f16", "bfloat16": "bf16"}
_OUTCOME_MARK = {"passed": "pass", "failed": "fail", "error": "error", "skipped": "skip", "xfailed": "deviation", "xpassed": "xpass"}
_PROP = re.compile(r"^(?P<name>[^\[]+)(?:\[(?P<params>.*)\])?$")
_REPRO_LIMIT = 200_000  # characters of a repro script embedded (they hold the inputs' bytes)


def split_property(prop: str) -> tuple[str, str | None, str]:
    """``test_zero_mean[float32-training=None]`` -> (``test_zero_mean``, ``float32``,
    ``training=None``): the law, the dtype (None if the property takes none), the rest."""
    m = _PROP.match(prop)
    name, params = m.group("name"), (m.group("params") or "")
    parts = params.split("-") if params else []
    dtype = next((p for p in parts if p in DTYPES), None)
    return name, dtype, "-".join(p for p in parts if p != dtype)


def row_key(prop: str) -> str:
    """The heat-map row of a report's property: its name and its non-dtype parameters."""
    name, _, rest = split_property(prop)
    return name + (f"[{rest}]" if rest else "")


def _dtype_order(d) -> int:
    return DTYPES.index(d) if d in DTYPES else len(DTYPES)


def _refusals() -> set[tuple[str, str]]:
    """``(subject, property)`` of the known deviations that are declared refusals (an input
    an API refuses by design: ``framework_findings``, kind ``refusal``): marked R, not D."""
    from bn_reference.subjects.framework_findings import FINDINGS, specs_of

    return {(spec, f.prop) for f in FINDINGS if f.kind == "refusal" for name in f.subjects for spec in specs_of(name)}


def _label_order(label: str):
    """Coverage labels by kind, then by the number they start with (``slice size: 2-7``
    before ``slice size: 64-511``), then as text."""
    kind, _, value = label.partition(": ")
    m = re.match(r"\d+", value)
    return kind, (int(m.group()) if m else math.inf), value


def suite_laws() -> dict[str, str]:
    """``{property: first sentence of its docstring}`` of the installed suite, read with
    ``ast`` (nothing imported): the rows' titles for reports that did not record them."""
    import ast

    from bn_reference.harness.activation import suite_dir
    from bn_reference.harness.failure import first_sentence

    out = {}
    try:
        files = sorted(suite_dir().glob("test_*.py"))
    except Exception:  # noqa: BLE001 - no suite importable: rows without titles
        return out
    for path in files:
        try:
            tree = ast.parse(path.read_text(), str(path))
        except (OSError, SyntaxError):
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                out[node.name] = first_sentence(ast.get_docstring(node))
    return out


def _repro_text(failure: dict | None, base: Path) -> dict | None:
    """The failure record with the repro script's text added (``repro_text``), if readable."""
    if not failure:
        return failure
    out = dict(failure)
    path = failure.get("repro")
    if path:
        p = Path(path) if Path(path).is_absolute() else base / path
        try:
            text = p.read_text()
        except OSError:
            text = None
        if text is not None:
            out["repro_text"] = text if len(text) <= _REPRO_LIMIT else text[:_REPRO_LIMIT] + "\n# ... (cut: see the file)\n"
    return out


def from_report(report: dict, base: Path | str | None = None, *, repro: bool = True) -> dict:
    """The page model of a ``report.build`` dict. Repro scripts are read from ``base`` (the
    directory their recorded paths are relative to; default: the current one), unless
    ``repro`` is false."""
    from bn_reference.harness.report import CONTRACT_TEXT

    base = Path.cwd() if base is None else Path(base)
    results = report["results"]
    info = report.get("subject_info") or {}
    contracts = report.get("contracts") or {}
    subjects = list(report["subjects"]) or list(dict.fromkeys(r["subject"] for r in results))
    dtypes_of: dict[str, set] = {s: set() for s in subjects}
    for r in results:
        dtypes_of.setdefault(r["subject"], set()).add(split_property(r["property"])[1])
    columns = []
    for s in dtypes_of:
        ds = sorted(dtypes_of[s] - {None}, key=_dtype_order) or [None]
        columns += [{"subject": s, "dtype": d} for d in ds]
    col_of = {(c["subject"], c["dtype"]): i for i, c in enumerate(columns)}
    rows = sorted({row_key(r["property"]) for r in results})
    row_of = {k: i for i, k in enumerate(rows)}
    laws = {row_key(r["property"]): r.get("law") for r in results if r.get("law")}
    if len(laws) < len(rows):
        known = suite_laws()
        laws.update({k: known[split_property(k)[0]] for k in rows if k not in laws and known.get(split_property(k)[0])})
    cells = []
    refusals = _refusals()
    for r in results:
        name, dtype, _ = split_property(r["property"])
        mark = _OUTCOME_MARK[r["outcome"]]
        if mark == "deviation" and (r["subject"], name) in refusals:
            mark = "refusal"
        col = col_of.get((r["subject"], dtype))
        if col is None:  # a property without a dtype among dtype columns: its first column
            col = next(i for i, c in enumerate(columns) if c["subject"] == r["subject"])
        cells.append(
            {
                "row": row_of[row_key(r["property"])], "col": col, "mark": mark,
                "ratio": r.get("worst_ratio"), "examples": r.get("examples"), "covered": sorted(r.get("covered") or [], key=_label_order),
                "nodeid": r["nodeid"], "property": r["property"], "subject": r["subject"], "dtype": dtype,
                "outcome": r["outcome"], "note": r.get("reason"), "failure": _repro_text(r.get("failure"), base) if repro else r.get("failure"),
            }
        )
    versions = report.get("versions") or {}
    header = [
        ["created", report.get("created", "?")],
        ["Hypothesis profile", report.get("hypothesis_profile", "?")],
        ["seed", report.get("seed", "not recorded")],
        ["versions", ", ".join(f"{k} {v}" for k, v in versions.items()) or "not recorded"],
        ["contracts held to", "; ".join(sorted({f"{CONTRACT_TEXT[c]}" for c in contracts.values()})) or "-"],
    ]
    subject_rows = [
        {
            "name": s, "group": "", "api": (info.get(s) or {}).get("api"), "version": None,
            "dtypes": (info.get(s) or {}).get("dtypes") or sorted(dtypes_of[s] - {None}, key=_dtype_order),
            "contract": CONTRACT_TEXT.get(contracts.get(s, ""), None),
        }
        for s in dtypes_of
    ]
    bad = [cell_item(cells, i) for i, c in enumerate(cells) if c["mark"] in ("fail", "error", "xpass")]
    known = [cell_item(cells, i) for i, c in enumerate(cells) if c["mark"] in ("deviation", "refusal")]
    lists = []
    if bad:
        lists.append({"title": f"Failures ({len(bad)})", "text": "Each opens the law, the worst element, the inputs the subject received and the repro script.", "items": bad})
    if known:
        lists.append({"title": f"Known deviations ({len(known)})", "text": "Expected failures, each with its recorded cause.", "items": known})
    return {
        "title": "bn-props report: " + ", ".join(subjects),
        "intro": [],
        "header": header,
        "subjects": subject_rows,
        "columns": columns,
        "rows": [{"key": k, "label": k.removeprefix("test_"), "law": laws.get(k)} for k in rows],
        "cells": cells,
        "lists": lists,
    }


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------

_LOW, _HIGH = -3.0, 0.0  # the colour scale: log10(err/bound) from 1e-3 to 1


def ratio_colour(ratio: float | None, failed: bool = False) -> str:
    """The cell colour of a worst err/bound: green (far inside the bound) to yellow (at the
    bound) on a log scale from 1e-3 to 1; red beyond it or failed."""
    if failed or (ratio is not None and ratio > 1.0):
        return "hsl(0,75%,52%)"
    if ratio is None or ratio <= 0:
        return "hsl(140,35%,72%)"
    t = min(max((math.log10(ratio) - _LOW) / (_HIGH - _LOW), 0.0), 1.0)
    return f"hsl({150 - 100 * t:.0f},{45 + 40 * t:.0f}%,{70 - 12 * t:.0f}%)"


def _e(text) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _tooltip(cell: dict, column: dict) -> str:
    parts = [f"{cell['subject']} · {cell['property']}", cell["mark"].upper() if cell["mark"] != "pass" else "pass"]
    if cell.get("ratio") is not None:
        parts.append(f"worst err/bound {cell['ratio']:.3g}")
    if cell.get("examples") is not None:
        parts.append(f"{cell['examples']} examples")
    if cell.get("covered"):
        parts.append(f"{len(cell['covered'])} coverage labels (click)")
    return "\n".join(parts)


def _legend() -> str:
    stops = "".join(
        f'<stop offset="{i / 10:.1f}" stop-color="{ratio_colour(10 ** (_LOW + (_HIGH - _LOW) * i / 10))}"/>' for i in range(11)
    )
    svg = (
        '<svg class="scale" width="260" height="34" role="img" aria-label="colour scale of worst err/bound">'
        f'<defs><linearGradient id="g">{stops}</linearGradient></defs>'
        '<rect x="0" y="0" width="220" height="14" fill="url(#g)"/>'
        f'<rect x="222" y="0" width="36" height="14" fill="{ratio_colour(2.0)}"/>'
        '<text x="0" y="28">0.001</text><text x="66" y="28">0.01</text><text x="140" y="28">0.1</text>'
        '<text x="206" y="28">1</text><text x="226" y="28">&gt;1</text></svg>'
    )
    marks = "".join(
        f'<li><span class="cell m-{m}" style="{_mark_style(m)}">{_e(g)}</span> {_e(words)}</li>' for m, (g, words) in MARKS.items()
    )
    marks = f'<li><span class="cell m-pass" style="{_mark_style("pass", None)}"></span> pass, no err/bound (a law checked exactly)</li>' + marks
    return f'<div class="legend"><div><b>worst err/bound</b> (1 = at the error model\'s bound)<br>{svg}</div><ul>{marks}</ul></div>'


def _mark_style(mark: str, ratio: float | None = 0.05) -> str:
    if mark == "pass":
        return f"background:{ratio_colour(ratio)}"
    if mark == "fail":
        return f"background:{ratio_colour(ratio, failed=True)}"
    return ""


def _heatmap(model: dict) -> str:
    cols, rows = model["columns"], model["rows"]
    at = {(c["row"], c["col"]): i for i, c in enumerate(model["cells"])}
    group_of = {s["name"]: s.get("group") or "" for s in model["subjects"]}
    # header rows: group (when any), subject, dtype
    def spans(key):
        out = []
        for i, c in enumerate(cols):
            k = key(c)
            if out and out[-1][0] == k:
                out[-1][1] += 1
            else:
                out.append([k, 1, i])
        return out

    head = []
    if any(group_of.get(c["subject"]) for c in cols):
        head.append('<tr class="groups"><th></th>' + "".join(f'<th colspan="{n}" class="grp">{_e(g)}</th>' for g, n, _ in spans(lambda c: group_of.get(c["subject"], ""))) + "</tr>")
    height = min(12 + 7.5 * max((len(c["subject"]) for c in cols), default=10), 260)
    head.append(
        f'<tr class="subjects" style="height:{height:.0f}px"><th class="corner">property \\ subject</th>'
        + "".join(f'<th colspan="{n}" class="subj" data-subject="{_e(s)}" title="{_e(s)}"><div><span>{_e(s)}</span></div></th>' for s, n, _ in spans(lambda c: c["subject"]))
        + "</tr>"
    )
    head.append('<tr class="dtypes"><th></th>' + "".join(f'<th class="dt" title="{_e(c["dtype"] or "no dtype parameter")}">{_e(_SHORT.get(c["dtype"], c["dtype"] or "-"))}</th>' for c in cols) + "</tr>")
    starts = {i for _, _, i in spans(lambda c: c["subject"])}
    body = []
    for r, row in enumerate(rows):
        tds = []
        for c, col in enumerate(cols):
            cls = " first" if c in starts else ""
            i = at.get((r, c))
            if i is None:
                tds.append(f'<td class="cell empty{cls}"></td>')
                continue
            cell = model["cells"][i]
            glyph = MARKS[cell["mark"]][0]
            tds.append(
                f'<td class="cell m-{cell["mark"]}{cls}" style="{_mark_style(cell["mark"], cell.get("ratio"))}" data-i="{i}" '
                f'tabindex="0" title="{_e(_tooltip(cell, col))}">{_e(glyph)}</td>'
            )
        body.append(f'<tr data-property="{_e(row["key"])}"><th class="prop" title="{_e(row.get("law") or row["key"])}">{_e(row["label"])}</th>{"".join(tds)}</tr>')
    return f'<div class="hm-wrap"><table class="heatmap"><thead>{"".join(head)}</thead><tbody>{"".join(body)}</tbody></table></div>'


def _counts(model: dict) -> str:
    counts = {m: 0 for m in MARKS}
    for c in model["cells"]:
        counts[c["mark"]] += 1
    passing = [c["ratio"] for c in model["cells"] if c["mark"] == "pass" and c.get("ratio") is not None]
    examples = sum(c.get("examples") or 0 for c in model["cells"])
    parts = [f'<span class="count m-{m}">{n} {m}</span>' for m, n in counts.items() if n]
    parts.append(f"{examples} examples in all")
    if passing:
        parts.append(f"worst err/bound of a passing cell: {max(passing):.2g}")
    return '<p class="counts">' + " · ".join(parts) + "</p>"


def _subjects_table(model: dict) -> str:
    subjects = model["subjects"]
    if not subjects:
        return ""
    has = {k: any(s.get(k) for s in subjects) for k in ("group", "api", "version", "contract")}
    heads = ["subject"] + [h for k, h in (("group", "family"), ("api", "API"), ("version", "library")) if has[k]] + ["dtypes"] + (["contract held to"] if has["contract"] else [])
    out = ["<table class=\"subjects\"><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in heads) + "</tr></thead><tbody>"]
    for s in subjects:
        tds = [f'<td><code>{_e(s["name"])}</code></td>']
        tds += [f"<td>{_e(s.get(k) or '')}</td>" for k in ("group", "api", "version") if has[k]]
        tds.append(f"<td>{_e(', '.join(s.get('dtypes') or []))}</td>")
        if has["contract"]:
            tds.append(f"<td>{_e(s.get('contract') or '')}</td>")
        out.append(f'<tr data-subject="{_e(s["name"])}">' + "".join(tds) + "</tr>")
    return "".join(out) + "</tbody></table>"


def cell_item(cells: list, i: int, label: str | None = None, why: str | None = None) -> dict:
    """A list entry opening cell ``i``: its subject and property, and the first line of its
    cause or failure message (``why``, unless given)."""
    c = cells[i]
    return {"i": i, "label": label or f"{c['subject']} · {c['property']}", "why": _first_line(c) if why is None else why}


def _not_run(model: dict) -> str:
    rows = model.get("not_run") or []
    if not rows:
        return ""
    items = "".join(f'<li data-not-run="{_e(r["subject"])}"><code>{_e(r["subject"])}</code>: {_e(r["why"])}</li>' for r in rows)
    return f'<section class="not-run"><h2>Not on this page ({len(rows)})</h2><ul>{items}</ul></section>'


def _lists(model: dict) -> str:
    out = []
    for lst in model.get("lists", []):
        items = "".join(
            f'<li><a href="#cell-{it["i"]}" data-i="{it["i"]}" class="open">{_e(it["label"])}</a>'
            + (f' <span class="why">{_e(it["why"])}</span>' if it.get("why") else "")
            + "</li>"
            for it in lst["items"]
        )
        out.append(f'<section class="list"><h2>{_e(lst["title"])}</h2><p>{_e(lst.get("text", ""))}</p><ul>{items}</ul></section>')
    return "".join(out)


def _first_line(cell: dict, limit: int = 160) -> str:
    text = cell.get("note") or ((cell.get("failure") or {}).get("message") or "")
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _json_for_script(data) -> str:
    """JSON safe inside ``<script>``: no ``</``, no ``<!--``, no U+2028/9."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


_CSS = """
:root{--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--bg:#fff;--panel:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:0 0 0 0;padding:16px 24px}
h1{font-size:20px;margin:0 0 6px}h2{font-size:16px;margin:20px 0 6px}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:var(--panel);border:1px solid var(--line);padding:8px;overflow:auto;white-space:pre-wrap;overflow-wrap:anywhere;max-height:60vh}
.repro pre{white-space:pre;overflow-wrap:normal}
.intro{color:var(--muted);max-width:1100px}
table.meta td{padding:1px 12px 1px 0;vertical-align:top}table.meta td:first-child{color:var(--muted);white-space:nowrap}
table.subjects{border-collapse:collapse;margin:6px 0}table.subjects th,table.subjects td{border-bottom:1px solid var(--line);padding:2px 10px 2px 0;text-align:left}
.legend{display:flex;gap:32px;align-items:flex-start;flex-wrap:wrap;margin:10px 0}
.legend ul{list-style:none;margin:0;padding:0;columns:2;column-gap:28px}.legend li{margin:2px 0}
svg.scale text{font:10px sans-serif;fill:var(--muted)}
.hm-wrap{overflow:auto;max-width:100%;border:1px solid var(--line)}
table.heatmap{border-collapse:separate;border-spacing:1px;margin:4px}
table.heatmap th.prop{text-align:right;font-weight:normal;white-space:nowrap;padding:0 8px 0 0;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;position:sticky;left:0;background:var(--bg)}
table.heatmap th.subj{vertical-align:bottom;padding:0 0 2px;font-weight:normal}
table.heatmap th.subj div{writing-mode:vertical-rl;transform:rotate(180deg);font:12px ui-monospace,Menlo,Consolas,monospace;margin:0 auto;white-space:nowrap;max-height:260px;overflow:hidden;text-overflow:ellipsis}
table.heatmap th.grp{font-size:12px;border-bottom:2px solid var(--fg);padding:0 2px}
table.heatmap th.dt{font:9px sans-serif;color:var(--muted);font-weight:normal;padding:0}
table.heatmap th.corner{font:11px sans-serif;color:var(--muted);font-weight:normal;text-align:right;vertical-align:bottom;padding-right:8px}
.cell{width:22px;min-width:22px;height:20px;text-align:center;font:bold 12px/20px sans-serif;cursor:default;border-radius:2px}
td.cell[data-i]{cursor:pointer}td.cell[data-i]:hover,td.cell.sel{outline:2px solid #0969da;outline-offset:0}
td.first{border-left:3px solid var(--bg)}
span.cell{display:inline-block;vertical-align:middle}
.m-fail{color:#fff}.m-error{background:#8b0000;color:#fff}
.m-deviation{background:repeating-linear-gradient(45deg,#f2d28b,#f2d28b 3px,#e7b94f 3px,#e7b94f 6px);color:#5a3d00}
.m-refusal{background:#b6c8e6;color:#1d3b6e}.m-xpass{background:#8250df;color:#fff}.m-skip{background:#eef0f2;color:#8c959f}
.empty{background:transparent}
.count{padding:1px 6px;border-radius:3px}.count.m-pass{background:hsl(140,45%,80%)}.count.m-fail{background:hsl(0,75%,52%)}
.list ul{padding-left:18px}.list li{margin:2px 0}.list .why{color:var(--muted)}
a.open{text-decoration:none;border-bottom:1px dotted}
#detail{position:fixed;top:0;right:0;bottom:0;width:min(760px,60vw);background:var(--bg);border-left:1px solid var(--line);box-shadow:-6px 0 18px rgba(0,0,0,.12);padding:14px 18px;overflow:auto;display:none;z-index:10}
#detail.open{display:block}#detail h2{margin-top:0;font-size:15px;word-break:break-all}
#detail .close{float:right;font-size:18px;border:0;background:none;cursor:pointer}
#detail dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:6px 0}#detail dt{color:var(--muted)}#detail dd{margin:0}
.tag{display:inline-block;background:var(--panel);border:1px solid var(--line);border-radius:10px;padding:0 7px;margin:1px 3px 1px 0;font-size:12px}
.noscript{color:var(--muted)}
"""

_JS = r"""
(function(){
var DATA=JSON.parse(document.getElementById('bn-data').textContent);
var panel=document.getElementById('detail'),sel=null;
function el(tag,cls,text){var e=document.createElement(tag);if(cls)e.className=cls;if(text!=null)e.textContent=text;return e;}
function section(title,text){var d=document.createElement('div');d.appendChild(el('h3',null,title));d.appendChild(el('pre',null,text));return d;}
function callText(c){var s=(c.function?('subject.'+c.function):'subject')+'(x, '+Object.keys(c.kwargs).map(function(k){var v=c.kwargs[k];
 if(v&&typeof v==='object'&&v.array)v='<'+v.array.dtype+' array '+JSON.stringify(v.array.shape)+'>';else v=JSON.stringify(v);return k+'='+v;}).join(', ')+')';
 return c.label+': '+s+'\n    x: '+c.x.dtype+' '+JSON.stringify(c.x.shape)+', bytes (hex, C order): '+(c.x.hex.length>400?c.x.hex.slice(0,400)+'...':c.x.hex);}
function show(i){var c=DATA.cells[i];if(!c)return;panel.innerHTML='';
 var close=el('button','close','\u00d7');close.title='close (Esc)';close.onclick=hide;panel.appendChild(close);
 panel.appendChild(el('h2',null,c.subject+' \u00b7 '+c.property));
 var dl=el('dl');function row(k,v){if(v==null||v==='')return;dl.appendChild(el('dt',null,k));dl.appendChild(el('dd',null,String(v)));}
 row('verdict',DATA.words[c.mark]);row('outcome',c.outcome);row('test',c.nodeid);
 row('worst err/bound',c.ratio==null?'not checked (or not finite)':c.ratio.toPrecision(3));
 row('examples run',c.examples==null?'not counted':c.examples);row('dtype',c.dtype||'-');
 var law=DATA.laws[c.row];row('law',law);panel.appendChild(dl);
 var cov=el('div','covered');cov.appendChild(el('h3',null,'covered'));
 if(c.covered&&c.covered.length){c.covered.forEach(function(t){cov.appendChild(el('span','tag',DATA.labels[t]));});}else cov.appendChild(el('span',null,'(no coverage labels recorded)'));
 panel.appendChild(cov);
 if(c.note)panel.appendChild(section(c.mark==='skip'?'why skipped':'cause',c.note));
 var f=c.failure;if(f){
  if(f.falsifying_example)panel.appendChild(section('smallest falsifying input (as Hypothesis shrank it)',f.falsifying_example));
  if(f.message)panel.appendChild(section('failure (the law, the worst element, the inputs)',f.message));
  if(f.calls&&f.calls.length)panel.appendChild(section('calls the subject received',f.calls.map(callText).join('\n')));
  if(f.repro_text){var r=section('repro script'+(f.repro?' ('+f.repro+')':''),f.repro_text);r.className='repro';panel.appendChild(r);}
  else if(f.repro)panel.appendChild(section('repro script','python '+f.repro));
  if(f.reproduce_failure)panel.appendChild(section('replay',f.reproduce_failure));
 }
 panel.classList.add('open');panel.scrollTop=0;
 if(sel)sel.classList.remove('sel');sel=document.querySelector('td.cell[data-i="'+i+'"]');if(sel)sel.classList.add('sel');
 if(location.hash!=='#cell-'+i)history.replaceState(null,'','#cell-'+i);}
function hide(){panel.classList.remove('open');if(sel)sel.classList.remove('sel');sel=null;history.replaceState(null,'',location.pathname+location.search);}
document.addEventListener('click',function(ev){var t=ev.target.closest('[data-i]');if(t&&!panel.contains(t)){ev.preventDefault();show(+t.getAttribute('data-i'));}});
document.addEventListener('keydown',function(ev){if(ev.key==='Escape')hide();else if(ev.key==='Enter'&&ev.target.matches&&ev.target.matches('td.cell[data-i]'))show(+ev.target.getAttribute('data-i'));});
function fromHash(){var m=/^#cell-(\d+)$/.exec(location.hash);if(m)show(+m[1]);}
window.addEventListener('hashchange',fromHash);fromHash();
})();
"""


def page(model: dict) -> str:
    """The self-contained HTML page of a page model (see the module docstring)."""
    labels = sorted({t for c in model["cells"] for t in c.get("covered") or ()}, key=_label_order)
    index = {t: i for i, t in enumerate(labels)}
    data = {
        # absent: null; coverage labels by their index in "labels" (a few dozen, shared by every cell)
        "cells": [{k: ([index[t] for t in v] if k == "covered" else v) for k, v in c.items() if v is not None and v != []} for c in model["cells"]],
        "labels": labels,
        "laws": [r.get("law") for r in model["rows"]],
        "words": {m: words for m, (_, words) in MARKS.items()},
    }
    header = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in model.get("header", []))
    intro = "".join(f'<p class="intro">{_e(p)}</p>' for p in model.get("intro", []))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        # No fetch of any kind: scripts and styles are inline, images are inline SVG.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{_e(model['title'])}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(model['title'])}</h1>{intro}"
        f'<table class="meta">{header}</table>'
        f"<h2>Subjects</h2>{_subjects_table(model)}{_not_run(model)}"
        f"<h2>Heat map: property × subject × dtype</h2>{_counts(model)}{_legend()}"
        '<p class="noscript">Hover a cell for its figures; click it for what it covered, and for a failure its law, worst element, inputs and repro.</p>'
        f"{_heatmap(model)}{_lists(model)}"
        '<aside id="detail" aria-live="polite"></aside>'
        f'<script type="application/json" id="bn-data">{_json_for_script(data)}</script>'
        f"<script>{_JS}</script></body></html>\n"
    )
