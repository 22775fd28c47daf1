"""Open every page of the rendered book in headless Chromium, offline, and fail on what a reader would see wrong.

Run by ``make test`` (target ``book-check``) after the smoke book is rendered::

    python tests/browser/check_book.py --html _build/html --executed _build/executed --screenshots _build/screenshots

Chromium is driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``: no port, no extra
package), with every host name mapped to nowhere and a dead proxy, so nothing can leave the machine. Per page:

* **network** — any request that is not ``file:``, ``data:``, ``blob:`` or ``about:`` fails the page (and any
  local file that fails to load: a missing script, stylesheet, font or image);
* **equations** — MathJax must have finished; raw TeX in the visible text (``\\(``, ``\\[``, ``$$``, ``\\lambda``,
  any ``\\command``) outside code and typeset math, a ``.math`` element left untypeset, or a MathJax error fails;
* **images** — every ``<img>`` must have decoded (natural width > 0);
* **links** — every internal link must point at an existing file, and at an existing id when it has a fragment;
* **chapters** — every table and figure that the executed notebook's kept cells produced must be on the page, and
  a chapter must have at least one table;
* **reading surface** — exactly one "Built with preset" line per notebook page, no visible parameter cells, cells
  tagged ``hide-input`` collapsed, no warnings or progress-bar residue in outputs, output tables with headers;
* **tables a reader can use** — no table in the article wider than its content column at the 1280 px viewport (the
  table itself is measured: a sideways-scrolling wrapper does not excuse it), and no cell (``td`` or ``th``) that
  reads exactly ``None``, ``nan``, ``NaN``, ``<NA>`` or ``NaT``, or is a float printed unrounded (five or more
  decimals, e.g. ``0.100000``); each failure names the table (its caption, else its first header) and the widths or
  the cell;
* **script errors** — an uncaught JavaScript exception fails the page.

A full-page screenshot of every page is written to ``--screenshots``. Exit status 1 when any check fails.

The checks of one page run without a book (``tests/test_browser_check.py``)::

    browser = Chromium(shutil.which("chromium"))
    problems = check_page(Page(browser), Path("page.html"))   # list of messages, empty when the page is fine
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

LOCAL_SCHEMES = {"file", "data", "blob", "about", "chrome", "devtools"}
WIDTH, MAX_HEIGHT = 1280, 16000
REMOVE_TAGS = {"remove-cell", "remove_cell"}
REMOVE_OUTPUT_TAGS = {"remove-output", "remove_output"}


class CDPError(RuntimeError):
    pass


class Chromium:
    """A headless Chromium driven over ``--remote-debugging-pipe`` (fd 3: commands in, fd 4: replies out)."""

    def __init__(self, binary: str, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="mam-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:  # in the child, before exec: the protocol's pipes on fds 3 and 4
            a, b = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [
            binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--remote-debugging-pipe", f"--user-data-dir={self.profile}", "--hide-scrollbars",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
            "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
            "--disable-domain-reliability", "--disable-client-side-phishing-detection", "--metrics-recording-only",
            "--mute-audio", "--allow-file-access-from-files",
            # offline for certain: every name resolves to nothing, and any proxied request goes to a dead port
            "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
            f"--window-size={WIDTH},900", "about:blank",
        ]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=wire, close_fds=False)
        os.close(to_child_r)
        os.close(from_child_w)
        self._next_id = 0
        self._replies: dict[int, queue.Queue] = {}
        self.events: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _drain_stderr(self) -> None:
        for _ in iter(self.proc.stderr.readline, b""):
            pass

    def _read(self) -> None:
        buf = b""
        with os.fdopen(self._from_child, "rb", buffering=0) as pipe:
            while True:
                chunk = pipe.read(1 << 16)
                if not chunk:
                    break
                buf += chunk
                while b"\0" in buf:
                    raw, buf = buf.split(b"\0", 1)
                    msg = json.loads(raw)
                    if "id" in msg and msg["id"] in self._replies:
                        self._replies[msg["id"]].put(msg)
                    elif "method" in msg:
                        self.events.put(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float | None = None) -> dict:
        with self._lock:
            self._next_id += 1
            mid = self._next_id
            self._replies[mid] = queue.Queue()
        msg: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        try:
            reply = self._replies[mid].get(timeout=timeout or self.timeout)
        except queue.Empty:
            raise CDPError(f"{method}: no reply in {timeout or self.timeout:.0f} s") from None
        finally:
            self._replies.pop(mid, None)
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child)
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    """One tab: navigation, evaluation, screenshots, and the requests and failures it saw."""

    def __init__(self, browser: Chromium) -> None:
        self.b = browser
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        self.send("Network.setCacheDisabled", {"cacheDisabled": True})
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": WIDTH, "height": 900, "deviceScaleFactor": 1, "mobile": False})

    def send(self, method: str, params: dict | None = None, timeout: float | None = None) -> dict:
        return self.b.send(method, params, self.session, timeout)

    def _events(self, until: float):
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return
            try:
                ev = self.b.events.get(timeout=min(left, 0.2))
            except queue.Empty:
                yield None
                continue
            if ev.get("sessionId") == self.session:
                yield ev

    def open(self, url: str, timeout: float = 60.0) -> dict[str, list]:
        """Navigate to ``url``, wait for the load event, MathJax and fonts, then for the network to settle; return
        what was requested, what failed and which exceptions were thrown."""
        seen: dict[str, list] = {"requests": [], "failed": [], "exceptions": [], "console": []}
        while not self.b.events.empty():  # events of the previous page
            self.b.events.get_nowait()
        self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout
        loaded = False
        last_activity = time.monotonic()
        pending: set[str] = set()
        for ev in self._events(deadline):
            if ev is not None:
                last_activity = time.monotonic()
                self._note(ev, seen, pending)
                if ev["method"] == "Page.loadEventFired":
                    loaded = True
                    break
        if not loaded:
            raise CDPError(f"{url}: no load event in {timeout:.0f} s")
        ready = self.evaluate(
            "(async () => {"
            "  const t0 = Date.now();"
            "  while (window.MathJax && !(MathJax.startup && MathJax.startup.promise) && Date.now() - t0 < 20000)"
            "    await new Promise(r => setTimeout(r, 50));"
            "  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;"
            "  if (document.fonts) await document.fonts.ready;"
            "  return !!(window.MathJax && MathJax.startup);"
            "})()", timeout=timeout)
        seen["mathjax"] = [bool(ready)]
        # let late requests (lazy scripts, fonts) show up: quiet for 0.5 s with nothing pending, at most 10 s
        settle = time.monotonic() + 10
        for ev in self._events(settle):
            if ev is not None:
                last_activity = time.monotonic()
                self._note(ev, seen, pending)
            elif not pending and time.monotonic() - last_activity > 0.5:
                break
        return seen

    @staticmethod
    def _note(ev: dict, seen: dict[str, list], pending: set[str]) -> None:
        m, p = ev["method"], ev.get("params", {})
        if m == "Network.requestWillBeSent":
            seen["requests"].append(p["request"]["url"])
            pending.add(p["requestId"])
        elif m == "Network.loadingFinished":
            pending.discard(p["requestId"])
        elif m == "Network.loadingFailed":
            pending.discard(p["requestId"])
            if not p.get("canceled"):
                seen["failed"].append(f"{p.get('errorText')} ({p.get('type')}) id {p['requestId']}")
        elif m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            seen["exceptions"].append(d.get("exception", {}).get("description") or d.get("text"))
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            seen["console"].append(f"{p['entry'].get('text')} {p['entry'].get('url', '')}")

    def evaluate(self, expression: str, timeout: float = 30.0) -> Any:
        res = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                             "returnByValue": True}, timeout=timeout)
        if "exceptionDetails" in res:
            raise CDPError(f"evaluation failed: {res['exceptionDetails']}")
        return res.get("result", {}).get("value")

    def screenshot(self, path: Path) -> None:
        height = int(self.evaluate("Math.ceil(document.documentElement.scrollHeight)") or 900)
        height = max(900, min(height, MAX_HEIGHT))
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False})
        try:
            shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False},
                             timeout=60)
        finally:
            self.send("Emulation.setDeviceMetricsOverride",
                      {"width": WIDTH, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        path.write_bytes(base64.b64decode(shot["data"]))


# What the page itself reports; one evaluation per page.
INSPECT = r"""
(() => {
  const SKIP = 'mjx-container, mjx-assistive-mml, script, style, noscript, pre, code, textarea, .highlight, ' +
               '.cell_input, #searchbox, .search-button-field, title';
  const texRe = /\\[()\[\]]|\$\$|\\[A-Za-z]{2,}/;
  const rawTex = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest(SKIP)) continue;
    const m = n.textContent.match(texRe);
    if (m) {
      const i = n.textContent.indexOf(m[0]);
      rawTex.push(n.textContent.slice(Math.max(0, i - 40), i + 60).replace(/\s+/g, ' '));
    }
  }
  const untypeset = [...document.querySelectorAll('.math')].filter(e => !e.querySelector('mjx-container'))
    .map(e => e.textContent.slice(0, 80));
  const mathErrors = [...document.querySelectorAll('mjx-merror, [data-mjx-error]')]
    .map(e => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 80));
  const typeset = document.querySelectorAll('mjx-container').length;
  const images = [...document.images].map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0,
                                                 output: !!i.closest('.cell_output')}));
  const links = [...document.querySelectorAll('a[href]')].map(a => a.href);
  const visible = e => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length);
  const main = document.querySelector('main') || document.body;
  const outputs = [...main.querySelectorAll('.cell_output')];
  const outputTables = outputs.flatMap(o => [...o.querySelectorAll('table')]);
  const headerless = outputTables.filter(t => {
    const ths = [...t.querySelectorAll('thead th, tr:first-child th')].map(th => th.textContent.trim());
    return !ths.some(s => /[A-Za-zλ]/.test(s));
  }).map(t => (t.querySelector('caption') || t).textContent.trim().slice(0, 60));
  const wide = outputTables.filter(t => t.scrollWidth > t.closest('.cell_output').clientWidth + 1).length;
  const outputText = outputs.map(o => o.innerText).join('\n');
  const residue = (outputText.match(/.{0,40}(Warning\b|IProgress|\d+%\|[^\n|]*\||\bit\/s\]|Traceback).{0,40}/g) || []);
  const presetLines = [...main.querySelectorAll('p.mam-preset')].filter(visible).map(p => p.innerText.trim());
  const paramCells = [...main.querySelectorAll('.cell')].filter(c =>
    visible(c) && /(^|\s)tag_(injected-)?parameters(\s|$)/.test(c.className)).length;
  const shown = e => !e.closest('details:not([open])') && (!e.checkVisibility || e.checkVisibility()) && visible(e);
  const openHidden = [...main.querySelectorAll('.cell.tag_hide-input')].filter(c => {
    const input = c.querySelector('.cell_input');
    return input && shown(input);
  }).length;
  // Tables a reader can use. The content column is the article's content box; every table in it (output tables and
  // Markdown ones, not code listings) is measured itself, so a table inside a sideways-scrolling wrapper (the
  // book's div.cell_output, the theme's scrollable-table container) still counts as too wide.
  const column = document.querySelector('.bd-article') || document.querySelector('article') || main;
  const pad = getComputedStyle(column);
  const columnWidth = column.clientWidth - parseFloat(pad.paddingLeft || 0) - parseFloat(pad.paddingRight || 0);
  const tables = [...column.querySelectorAll('table')].filter(t =>
    !t.closest('.highlight, pre, .highlighttable, mjx-container') && !t.classList.contains('highlighttable'));
  const nameOf = (t, i) => {
    const cap = t.querySelector('caption');
    const first = [...t.querySelectorAll('th')].map(th => th.textContent.trim()).find(s => s);
    const name = (cap && cap.textContent.trim()) || (first && `table headed "${first}"`) || `table ${i + 1}`;
    return name.replace(/\s+/g, ' ').slice(0, 100);
  };
  const overflow = [];
  const rawCells = [];
  const RAW_MISSING = new Set(['None', 'nan', 'NaN', '<NA>', 'NaT']);
  const RAW_FLOAT = /^[−+-]?\d+\.\d{5,}$/;
  tables.forEach((t, i) => {
    const width = Math.max(t.getBoundingClientRect().width, t.scrollWidth);  // 0 while collapsed: not measured
    if (visible(t) && width > columnWidth + 1) overflow.push({name: nameOf(t, i), width: Math.round(width),
                                                              column: Math.round(columnWidth)});
    for (const cell of t.querySelectorAll('td, th')) {
      if (cell.closest('table') !== t) continue;  // a nested table is checked on its own
      const text = cell.textContent.trim();
      if (RAW_MISSING.has(text)) rawCells.push({name: nameOf(t, i), text, why: 'missing value printed raw'});
      else if (RAW_FLOAT.test(text)) rawCells.push({name: nameOf(t, i), text, why: 'float not rounded'});
    }
  });
  return {title: document.title, rawTex, untypeset, mathErrors, typeset, images, links, overflow, rawCells,
          outputTables: outputTables.length, wide, outputImages: images.filter(i => i.output).length, headerless,
          residue, presetLines, paramCells, openHidden, mathjax: !!(window.MathJax && window.MathJax.startup),
          mathjaxSrc: [...document.scripts].map(s => s.src).filter(s => /mathjax/i.test(s))};
})()
"""


class Ids(HTMLParser):
    """Every ``id`` (and ``name`` of an anchor) in an HTML file."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if value and (key == "id" or (tag == "a" and key == "name")):
                self.ids.add(value)


_ids_cache: dict[Path, set[str]] = {}


def ids_of(path: Path) -> set[str]:
    if path not in _ids_cache:
        parser = Ids()
        parser.feed(path.read_text(errors="replace"))
        _ids_cache[path] = parser.ids
    return _ids_cache[path]


def check_link(url: str, root: Path) -> str | None:
    """Why an internal link is broken, or None (external and non-file links are not followed)."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        return None
    path = Path(unquote(parts.path))
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return f"{url}: outside the book"
    if path.is_dir():
        path = path / "index.html"
    if not path.exists():
        return f"{url}: no such file"
    if parts.fragment and path.suffix == ".html" and unquote(parts.fragment) not in ids_of(path):
        return f"{url}: no element with id {unquote(parts.fragment)!r}"
    return None


def expected_outputs(notebook: Path) -> dict[str, int]:
    """Tables (HTML outputs holding a <table>) and figures (image outputs) of the cells a page keeps."""
    nb = json.loads(notebook.read_text())
    tables = figures = 0
    for cell in nb["cells"]:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if cell["cell_type"] != "code" or tags & (REMOVE_TAGS | REMOVE_OUTPUT_TAGS):
            continue
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if any(k.startswith("image/") for k in data):
                figures += 1
            elif "<table" in "".join(data.get("text/html", "")):
                tables += "".join(data["text/html"]).count("<table")
    return {"tables": tables, "figures": figures}


REFRESH = re.compile(r'<meta[^>]+http-equiv="refresh"[^>]+url=([^"\'>]+)', re.IGNORECASE)


def redirect_of(html: Path) -> str | None:
    """The target of a page that only redirects (``<meta http-equiv="refresh">``, as Jupyter Book's index.html)."""
    found = REFRESH.search(html.read_text(errors="replace")[:4000])
    return found.group(1).strip() if found else None


def table_problems(info: dict[str, Any], width: int = WIDTH) -> list[str]:
    """The page's tables a reader cannot use, from what :data:`INSPECT` measured: one wider than the content column
    (at the ``width`` px viewport), and each cell that shows a missing value or an unrounded float as it came."""
    problems = [f"table wider than the page at {width} px: {t['name']!r} is {t['width']} px wide, the content "
                f"column {t['column']} px" for t in info["overflow"]]
    cells: dict[tuple[str, str, str], int] = {}
    for c in info["rawCells"]:
        key = (c["name"], c["text"], c["why"])
        cells[key] = cells.get(key, 0) + 1
    problems += [f"raw cell in table {name!r}: {text!r} ({why}{f', {n} cells' if n > 1 else ''})"
                 for (name, text, why), n in cells.items()]
    return problems


def check_page(page: Page, html: Path, root: Path | None = None, executed: Path | None = None,
               shots: Path | None = None) -> list[str]:
    """Open one page and return what is wrong with it (also printed). ``root`` is the book's folder (links must
    stay in it; default: the page's folder); ``executed``, the notebooks the pages were rendered from (without it,
    no comparison with a notebook's outputs); ``shots``, where the page's screenshot goes (none without it)."""
    root = html.parent if root is None else root
    rel = html.relative_to(root)
    target = redirect_of(html)
    if target is not None:  # not opened (the browser would leave it at once): its target must exist
        why = check_link((html.parent / target).resolve().as_uri(), root)
        print(f"{'FAIL' if why else 'ok  '} {rel}: redirects to {target}")
        return [f"broken redirect: {why}"] if why else []
    seen = page.open(html.resolve().as_uri())
    info = page.evaluate(INSPECT)
    problems = []
    outside = [u for u in seen["requests"] if urlsplit(u).scheme not in LOCAL_SCHEMES]
    problems += [f"network request: {u}" for u in dict.fromkeys(outside)]
    problems += [f"failed to load: {f}" for f in seen["failed"]]
    problems += [f"JavaScript exception: {e}" for e in seen["exceptions"]]
    problems += [f"raw TeX on the page: …{t}…" for t in info["rawTex"][:5]]
    problems += [f"math not typeset: {t}" for t in info["untypeset"][:5]]
    problems += [f"MathJax error: {t}" for t in info["mathErrors"][:5]]
    problems += [f"image did not load: {i['src']}" for i in info["images"] if not i["ok"]]
    for url in dict.fromkeys(info["links"]):
        why = check_link(url, root)
        if why:
            problems.append(f"broken link: {why}")
    if info["mathjaxSrc"] and not all(urlsplit(s).scheme == "file" for s in info["mathjaxSrc"]):
        problems.append(f"MathJax not served by the book: {info['mathjaxSrc']}")
    if info["typeset"] and not info["mathjax"]:
        problems.append("math on the page but MathJax did not start")
    if info["paramCells"]:
        problems.append(f"{info['paramCells']} parameter cell(s) visible")
    if info["openHidden"]:
        problems.append(f"{info['openHidden']} hide-input cell(s) shown expanded")
    problems += [f"warning or progress residue in an output: {r.strip()}" for r in info["residue"][:5]]
    problems += [f"output table without readable headers: {t}" for t in info["headerless"]]
    problems += table_problems(info)
    wide = f" ({info['wide']} scroll sideways)" if info["wide"] else ""
    summary = f"{info['outputTables']} tables{wide}, {info['outputImages']} figures, {info['typeset']} equations"
    notebook = None if executed is None else executed / rel.with_suffix(".ipynb")  # None: a page on its own
    if notebook is not None and notebook.is_file():  # a page rendered from an executed notebook
        want = expected_outputs(notebook)
        if info["outputTables"] < want["tables"]:
            problems.append(f"{info['outputTables']} output tables on the page, the notebook made {want['tables']}")
        if info["outputImages"] < want["figures"]:
            problems.append(f"{info['outputImages']} figures on the page, the notebook made {want['figures']}")
        if re.match(r"\d", rel.name) and info["outputTables"] == 0:
            problems.append("a chapter without any table")
        if len(info["presetLines"]) != 1:
            problems.append(f"{len(info['presetLines'])} 'Built with preset' lines (want exactly 1)")
        else:
            summary += f", {info['presetLines'][0].split(' — ')[0]!r}"
    elif notebook is not None and re.match(r"\d", rel.name):
        problems.append(f"no executed notebook {notebook} for this chapter page")
    if shots is not None:
        page.screenshot(shots / (str(rel.with_suffix("")).replace(os.sep, "__") + ".png"))
    print(f"{'FAIL' if problems else 'ok  '} {rel}: {summary}; {len(seen['requests'])} requests, all local"
          if not outside else f"FAIL {rel}: {summary}")
    for p in problems:
        print(f"     - {p}")
    return problems


def pages(root: Path) -> list[Path]:
    """Every HTML page of the book (not the theme's static files nor the notebook sources)."""
    skip = {"_static", "_sources", "_images", "_downloads"}
    return sorted(p for p in root.rglob("*.html") if not skip & set(p.relative_to(root).parts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--html", type=Path, default=Path("_build/html"))
    parser.add_argument("--executed", type=Path, default=Path("_build/executed"),
                        help="the executed notebooks the pages were rendered from")
    parser.add_argument("--screenshots", type=Path, default=Path("_build/screenshots"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    args = parser.parse_args(argv)
    if not args.chromium:
        sys.exit("no chromium on PATH (make browser installs Debian's)")
    if not (args.html / "index.html").is_file():
        sys.exit(f"no rendered book at {args.html} (make book PRESET=smoke)")
    if not args.executed.is_dir():
        sys.exit(f"no executed notebooks at {args.executed} (make book PRESET=smoke)")
    shutil.rmtree(args.screenshots, ignore_errors=True)
    args.screenshots.mkdir(parents=True)
    todo = pages(args.html)
    chapters = [p for p in todo if re.match(r"\d", p.name)]
    failures: dict[str, list[str]] = {}
    if not chapters:
        failures["book"] = ["no chapter pages rendered"]
    t0 = time.monotonic()
    browser = Chromium(args.chromium)
    try:
        page = Page(browser)
        for html in todo:
            try:
                problems = check_page(page, html, args.html, args.executed, args.screenshots)
            except CDPError as err:
                problems = [f"could not check the page: {err}"]
                print(f"FAIL {html.relative_to(args.html)}: {err}")
            if problems:
                failures[str(html.relative_to(args.html))] = problems
    finally:
        browser.close()
    n_bad = len(failures)
    print(f"browser check: {len(todo)} pages in {time.monotonic() - t0:.0f} s, screenshots in {args.screenshots}")
    print(f"{len(todo) - n_bad} passed, {n_bad} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
