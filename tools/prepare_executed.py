"""Tidy the executed notebooks of ``_build/executed`` for reading, and lay out the book's static files.

Run by ``make book`` after papermill and before jupyter-book; the source notebooks under ``book/`` are never touched.

For every executed notebook:

* the stored ``parameters`` cell and papermill's ``injected-parameters`` cell are tagged ``remove-cell``, and one
  line naming the preset that produced the page (``<p class="mam-preset">``) is put right under the page title;
* stream output is cleaned: stderr (warnings, progress bars) is dropped, carriage-return progress residue is
  collapsed to what a terminal would show, and outputs left empty are removed;
* code cells that only call ``glue(...)`` (their outputs are never displayed) are tagged ``remove-cell``; the glued
  values stay in the notebook for ``{glue:text}`` references.

Running it twice gives the same notebooks. With ``--static DIR`` it also copies MathJax (``--mathjax``, the
``es5`` folder of the npm package) and the book's stylesheet into ``DIR`` (the folder that ``_config.yml`` names
in ``html_static_path``).
"""

from __future__ import annotations

import argparse
import ast
import html
import json
import re
import shutil
import sys
from pathlib import Path

PRESET_MARK = "mam-preset-line"
HIDDEN_TAGS = ("parameters", "injected-parameters")
#: What of MathJax's ``es5`` folder the book serves: the combined TeX+MathML → CommonHTML component that Sphinx
#: loads, and the folders it loads from on demand (TeX extensions, fonts, menu, accessibility, speech).
MATHJAX_PARTS = ("tex-mml-chtml.js", "input", "output/chtml", "output/chtml.js", "ui", "a11y", "sre", "adaptors")
STYLESHEET = "mam.css"
CSS = """\
/* The book's own touches (written by tools/prepare_executed.py). */
p.mam-preset {
  font-size: 0.92em; color: var(--pst-color-text-muted); border-left: 3px solid var(--pst-color-primary);
  padding: 0.2em 0 0.2em 0.7em; margin: 0.4em 0 1.2em 0;
}
/* Output tables: headers that read as headers, column groups that read as groups, wide tables scroll. */
div.cell_output { overflow-x: auto; }
div.cell_output table { border-collapse: collapse; margin: 0.6em 0 1.2em 0; font-size: 0.85em; }
div.cell_output table caption {
  caption-side: top; text-align: left; font-weight: 600; color: var(--pst-color-text-base); padding: 0 0 0.4em 0;
}
div.cell_output table th, div.cell_output table td { padding: 0.2em 0.45em; }
div.cell_output table thead th {
  text-align: center; vertical-align: bottom; font-weight: 600; white-space: normal;
  background: var(--pst-color-surface); border-bottom: 1px solid var(--pst-color-border);
}
div.cell_output table thead tr:not(:last-child) th[colspan] { border-bottom: 2px solid var(--pst-color-primary); }
div.cell_output table tbody th { text-align: left; font-weight: 600; }
div.cell_output table td { font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
/* Headers wrap at spaces only: a long transcript or id may wrap inside a cell, a word in a header never. */
div.cell_output table th { overflow-wrap: normal; }
"""


def preset_of(nb: dict) -> str | None:
    """The preset a notebook was executed with: papermill's record, else the last ``preset = ...`` assignment of
    the injected or stored parameters cell."""
    params = nb.get("metadata", {}).get("papermill", {}).get("parameters") or {}
    if isinstance(params.get("preset"), str):
        return params["preset"]
    found = None
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and set(_tags(cell)) & set(HIDDEN_TAGS):
            found = _assigned(_source(cell), "preset") or found
    return found


def _assigned(source: str, name: str) -> str | None:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    value = None
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            value = node.value.value
    return value


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tags(cell: dict) -> list[str]:
    return cell.setdefault("metadata", {}).setdefault("tags", [])


def _add_tag(cell: dict, tag: str) -> None:
    tags = _tags(cell)
    if tag not in tags:
        tags.append(tag)


def preset_line(preset: str) -> str:
    """The one line that says which preset produced a page (with the preset's own description when it loads)."""
    description = ""
    try:
        from mamlib.presets.schema import load_preset

        cfg = load_preset(preset)
        name, description = cfg.name, " ".join(str(cfg.description).split())
    except Exception:  # a preset that does not load here still gets its line, by the name it was given
        name = preset
    text = f"Built with preset <strong>{html.escape(name)}</strong>"
    if description:
        text += f" — {html.escape(description)}"
    return f'<p class="mam-preset">{text}</p>\n'


def _terminal_text(text: str) -> str:
    """What a terminal shows of ``text``: on every line, only what follows the last carriage return."""
    lines = text.split("\n")
    return "\n".join(line.rsplit("\r", 1)[-1] for line in lines)


def clean_outputs(cell: dict) -> None:
    """Drop stderr streams and progress residue from a code cell's outputs."""
    kept = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            if out.get("name") == "stderr":
                continue
            text = _terminal_text("".join(out["text"]) if isinstance(out["text"], list) else out["text"])
            if not text.strip():
                continue
            out["text"] = text
        kept.append(out)
    cell["outputs"] = kept


def is_glue_only(cell: dict) -> bool:
    """True for a code cell whose statements are only imports and ``glue(...)`` / ``x.glue(...)`` calls."""
    try:
        body = ast.parse(_source(cell)).body
    except SyntaxError:
        return False

    def glue_call(node: ast.stmt) -> bool:
        if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
            return False
        func = node.value.func
        return (isinstance(func, ast.Name) and func.id == "glue") or (
            isinstance(func, ast.Attribute) and func.attr == "glue")

    calls = [n for n in body if not isinstance(n, (ast.Import, ast.ImportFrom))]
    return bool(calls) and all(glue_call(n) for n in calls)


def _split_title(cells: list[dict]) -> int:
    """Index at which the preset line goes: right after the page's ``# title`` (splitting the first markdown cell
    after its title line when more text follows it), else at the top."""
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        lines = _source(cell).split("\n")
        for j, line in enumerate(lines):
            if re.match(r"#\s", line):
                rest = "\n".join(lines[j + 1:]).strip("\n")
                if rest:
                    cell["source"] = "\n".join(lines[:j + 1])
                    tail = {"cell_type": "markdown", "metadata": {}, "source": rest}
                    if "id" in cell:
                        tail["id"] = f"{cell['id']}-rest"[:64]
                    cells.insert(i + 1, tail)
                return i + 1
        return i  # the first markdown cell has no title: the line goes above it
    return 0


def prepare(nb: dict) -> dict:
    """Tidy one executed notebook in place (idempotent) and return it."""
    cells = [c for c in nb["cells"] if not c.get("metadata", {}).get(PRESET_MARK)]
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        if set(_tags(cell)) & set(HIDDEN_TAGS) or is_glue_only(cell):
            _add_tag(cell, "remove-cell")
        clean_outputs(cell)
    preset = preset_of(nb)
    if preset is not None:
        at = _split_title(cells)
        line = {"cell_type": "markdown", "metadata": {PRESET_MARK: True}, "source": preset_line(preset)}
        if any("id" in c for c in cells):
            line["id"] = "mam-preset-line"
        cells.insert(at, line)
    nb["cells"] = cells
    return nb


def copy_static(static: Path, mathjax: Path | None) -> None:
    """Lay out the book's static folder: the stylesheet, and MathJax's files when ``mathjax`` is given."""
    static.mkdir(parents=True, exist_ok=True)
    (static / STYLESHEET).write_text(CSS)
    if mathjax is None:
        return
    if not (mathjax / MATHJAX_PARTS[0]).is_file():
        sys.exit(f"MathJax not found at {mathjax} (expected {MATHJAX_PARTS[0]} there): run `make mathjax`")
    target = static / "mathjax"
    shutil.rmtree(target, ignore_errors=True)
    for part in MATHJAX_PARTS:
        src, dst = mathjax / part, target / part
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst)
        elif src.is_file():
            shutil.copy2(src, dst)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="executed notebooks to tidy in place")
    parser.add_argument("--static", type=Path, help="the book's static folder to lay out")
    parser.add_argument("--mathjax", type=Path, help="MathJax's es5 folder (from the npm package)")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        nb = json.loads(path.read_text())
        path.write_text(json.dumps(prepare(nb), indent=1, ensure_ascii=False) + "\n")
        print(f"prepared {path} (preset {preset_of(nb)})")
    if args.static is not None:
        copy_static(args.static, args.mathjax)


if __name__ == "__main__":
    main()
