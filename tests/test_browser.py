"""The built book in a real browser: the top of the testing pyramid.

`make test` builds the HTML (`make html`) right before it runs this file (`make browser`). Every
page of `_build/html` is served over http by a thread on localhost and opened in Debian's
Chromium (`/usr/bin/chromium`, driven by Playwright; never `playwright install`). Every request to
another host is blocked, so a page that needs the network to render fails here. For each page:

- no console error and no uncaught exception, apart from the known harmless messages below;
- no local request fails or answers with an error status;
- MathJax, loaded from the local copy, has rendered every math block (`span.math`, `div.math`,
  which include myst-nb's text/latex outputs) without a TeX error, and no raw TeX is left in the
  prose outside code;
- every image has loaded (`naturalWidth > 0`);
- every link into the book points at a file that exists and, with a `#fragment`, at an id in it.

Then its layout, with the window 1280 px and 390 px (a phone) wide (`test_page_layout`): nothing in the
chapter text is cut off or needs the whole page to scroll sideways. For each display equation (its
MathJax container), code block (`pre`: cell inputs, outputs, literal blocks), rich output and table it
compares the element's `scrollWidth` with its `clientWidth`, and its box with the visible box of its
clipping or scrolling ancestor (or the window). Content wider than the element is allowed only where
the element itself is the scroll container (`overflow-x: auto` or `scroll`): on a phone a display
equation may scroll inside its MathJax container (at 1280 px it must fit: long ones are broken into
aligned lines), a table inside the wrapper that holds only it, a rich output
inside its own box, inline math (which cannot break across lines) inside its span. Code blocks must
not need sideways scrolling at all: book/_static/bn-layout.css wraps them, so the end of a line
(where a check prints its verdict) is always on screen. Equation numbers and the page as a whole
must fit too. At both widths, every figure shows 10 pt of its text at least 10 px tall, and shows exactly
one of its two layouts (as designed, and with its panels stacked for a phone below 768 px).

Static checks: no page or stylesheet refers to a resource on another host; no page declares the same
`const`/`let` twice in its inline scripts; and while `_config.yml` has no `repository.url`, no page
shows a repository, issues, Binder, Colab or live-code (thebe) button.
Screenshots of the landing page and of one chapter are written to `_build/screenshots`.

Without a build the tests skip, with the reason, unless `CI` is set: then they fail.
`BOOK_HTML_DIR` and `CHROMIUM` override the build directory and the browser binary.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import os
import posixpath
import re
import threading
import urllib.parse
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
HTML_DIR = Path(os.environ.get("BOOK_HTML_DIR", ROOT / "_build" / "html")).resolve()
SHOTS_DIR = HTML_DIR.parent / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
PAGE_TIMEOUT_MS = 60_000
MATHJAX_TIMEOUT_MS = 20_000

# Console messages allowed on a page: none. The two that ../shared/DESIGN.md once listed are gone at
# their source (_config.yml): sphinx-thebe's "Identifier 'THEBE_JS_URL' has already been declared"
# (the extension is no longer loaded; Sphinx 7.4 wrote its inline script into every page twice) and
# the pydata theme's "Got invalid theme mode" (html_context.default_mode is set). The one message a
# browser logs by itself, the /favicon.ico 404, is ignored where it is reported (_Visit._favicon).
ALLOWED_CONSOLE: tuple[re.Pattern, ...] = ()
# Requests to other hosts that a page may make (they are blocked without failing it): none. The last
# one, sphinx-thebe's library on unpkg.com, went with the extension.
ALLOWED_BLOCKED: tuple[str, ...] = ()
# The window widths of the layout check: a laptop and a phone.
WIDTHS = (1280, 390)
#: From this window width on, every display equation fits its column (long ones are broken into lines);
#: narrower, a display equation may scroll inside its own box.
WIDE = 1000
# Text that must not survive rendering (outside code): TeX delimiters and commands MathJax
# should have consumed, and MyST syntax that was not parsed.
RAW_SOURCE = re.compile(
    r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\\end\{|\\(?:frac|sqrt|mathcal|mathbf|hat|sum|partial)\b"
    r"|```|\{(?:glue|glue:text|glue:any|eq|cite|cite:p|cite:t|term|ref|numref|doc|prf:ref)\}`"
)


def _pages() -> list[str]:
    """Every HTML page of the build (template fragments under _static are not pages)."""
    if not HTML_DIR.is_dir():
        return []
    skip = {"_static", "_sources", "_images"}
    return sorted(
        p.relative_to(HTML_DIR).as_posix()
        for p in HTML_DIR.rglob("*.html")
        if not skip.intersection(p.relative_to(HTML_DIR).parts)
    )


PAGES = _pages()


def _unavailable(reason: str) -> None:
    """Skip with the reason on a developer machine; fail when CI is set."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI is set, so the browser check cannot be skipped")
    pytest.skip(reason)


def _require_build() -> None:
    if not HTML_DIR.is_dir():
        _unavailable(f"no built book at {HTML_DIR}; run `make html` first")
    if not (HTML_DIR / "index.html").is_file():
        pytest.fail(f"the build at {HTML_DIR} has no index.html; it is incomplete, rebuild it with `make html`")


# ---------------------------------------------------------------------------------------------
# Static facts about the build: ids per page, resources that point at other hosts.


class _Scan(html.parser.HTMLParser):
    """Collects element ids (and <a name>) and the URLs of resources a page loads."""

    RESOURCE_ATTRS = {
        "script": ("src",),
        "img": ("src", "srcset"),
        "iframe": ("src",),
        "source": ("src", "srcset"),
        "video": ("src", "poster"),
        "audio": ("src",),
        "embed": ("src",),
        "object": ("data",),
        "input": ("src",),
    }
    LINK_RELS = {"stylesheet", "preload", "modulepreload", "icon", "shortcut", "apple-touch-icon", "manifest"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.resources: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and not a.get("src") and (a.get("type") or "text/javascript") in (
                "text/javascript", "module", "application/javascript"):
            self._in_inline_script = True
            self.inline_scripts.append("")
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        for name in self.RESOURCE_ATTRS.get(tag, ()):
            if a.get(name):
                self.resources.extend(part.strip().split(" ")[0] for part in a[name].split(","))
        if tag == "link" and a.get("href") and self.LINK_RELS.intersection((a.get("rel") or "").lower().split()):
            self.resources.append(a["href"])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_inline_script = False

    def handle_data(self, data):
        if self._in_inline_script:
            self.inline_scripts[-1] += data


@functools.cache
def _scan(path: Path) -> _Scan:
    scan = _Scan()
    scan.feed(path.read_text(encoding="utf-8", errors="replace"))
    return scan


def _is_external(url: str) -> bool:
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme in ("", "data", "blob", "about", "javascript", "mailto"):
        return bool(parts.netloc) and parts.hostname not in LOCAL_HOSTS  # "//host/x" is external too
    return parts.hostname not in LOCAL_HOSTS


def test_no_page_loads_resources_from_other_hosts():
    """Scripts, styles, images, fonts and frames all come from the build itself."""
    _require_build()
    offenders = []
    for page in PAGES:
        for url in _scan(HTML_DIR / page).resources:
            if _is_external(url) and not url.startswith(ALLOWED_BLOCKED):
                offenders.append(f"{page}: {url}")
    css_url = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])\s*((?:https?:)?//[^'")\s]+)""")
    for css in sorted(HTML_DIR.joinpath("_static").rglob("*.css")):
        for url in css_url.findall(css.read_text(encoding="utf-8", errors="replace")):
            offenders.append(f"{css.relative_to(HTML_DIR)}: {url}")
    assert not offenders, "resources on other hosts (the book must render offline):\n" + "\n".join(offenders)


TOP_LEVEL_DECLARATION = re.compile(r"(?:^|;)\s*(?:const|let)\s+([A-Za-z_$][\w$]*)", re.MULTILINE)


def test_no_page_declares_a_script_constant_twice():
    """Each page's inline scripts share one global scope: a `const`/`let` declared twice throws a
    SyntaxError (as sphinx-thebe's `THEBE_JS_URL` did, written into every page twice by Sphinx 7.4)."""
    _require_build()
    offenders = []
    for page in PAGES:
        names = [n for body in _scan(HTML_DIR / page).inline_scripts for n in TOP_LEVEL_DECLARATION.findall(body)]
        offenders += [f"{page}: {n}" for n in sorted({n for n in names if names.count(n) > 1})]
    assert not offenders, "declared twice (the page logs a SyntaxError):\n" + "\n".join(offenders)


# What sphinx-book-theme writes for the buttons that need a published repository.
REPOSITORY_BUTTONS = re.compile(
    r"btn-source-repository-button|btn-source-issues-button|btn-source-edit-button|aria-label=\"Source repositories\""
    r"|aria-label=\"Launch interactive content\"|mybinder\.org|colab\.research\.google\.com|thebe-launch-button"
)


def _repository_url() -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8")) or {}
    return ((config.get("repository") or {}).get("url") or "").strip()


def test_no_repository_buttons_without_a_repository():
    """Until `repository.url` is filled in (README: publishing the book) no page links to a repository
    that does not exist: no repository, issues, Binder, Colab or live-code button."""
    _require_build()
    if _repository_url():
        pytest.skip(f"repository.url is set ({_repository_url()}); the buttons may point at it")
    offenders = []
    for page in PAGES:
        found = sorted(set(REPOSITORY_BUTTONS.findall((HTML_DIR / page).read_text(encoding="utf-8", errors="replace"))))
        if found:
            offenders.append(f"{page}: {', '.join(found)}")
    assert not offenders, "buttons for a repository while _config.yml has none:\n" + "\n".join(offenders)


def test_proof_index_lists_titles_not_labels():
    """Every entry of the Proof Index reads "Kind: title (chapter title)", one per prf directive of the chapters."""
    _require_build()
    import html
    import json
    import re

    labels = {}
    for nb in sorted((ROOT / "book").glob("*.ipynb")):
        for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
            src = "".join(cell["source"])
            for kind, title, label in re.findall(r":::\{prf:(\w+)\} *([^\n]*)\n(?::label: *(\S+))?", src):
                if kind != "proof" and label:
                    labels[label] = (kind, title.strip())
    page = html.unescape(re.sub(r"<[^>]+>", " ", (HTML_DIR / "prf-prf.html").read_text(encoding="utf-8")))
    text = re.sub(r"\s+", " ", page).replace("\u2019", "'")  # Sphinx's smart quotes back to straight ones
    assert labels, "no labelled theorem found in the chapters"
    for label, (kind, title) in labels.items():
        assert label not in text, f"the Proof Index still shows the label {label!r}"
        assert f"{kind.title()}: " in text and title.split("$")[0].strip() in text, (label, title)
    stems = [nb.stem for nb in (ROOT / "book").glob("*.ipynb")]
    assert not [s for s in stems if f"({s})" in text], "the Proof Index names a chapter by its file, not its title"


def test_mathjax_is_served_locally():
    """sphinx-mathjax-offline copied MathJax 3 with its fonts, and math pages point at that copy."""
    _require_build()
    mathjax = HTML_DIR / "_static" / "mathjax"
    assert (mathjax / "tex-chtml.js").is_file(), f"{mathjax}/tex-chtml.js is missing: is sphinx-mathjax-offline on?"
    fonts = list((mathjax / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))
    assert fonts, f"no MathJax CHTML fonts under {mathjax}/output/chtml/fonts/woff-v2"
    for page in PAGES:
        scripts = [u for u in _scan(HTML_DIR / page).resources if "mathjax" in u.lower()]
        for url in scripts:
            target = (HTML_DIR / page).parent / urllib.parse.urlsplit(url).path
            assert target.resolve().is_file(), f"{page} loads MathJax from {url}, which is not in the build"


# ---------------------------------------------------------------------------------------------
# The browser.


META_REFRESH = re.compile(
    r"""<meta\s+http-equiv=["']?refresh["']?\s+content=["']\s*\d+\s*;\s*url=([^"']+)["']""", re.IGNORECASE
)


def _refresh_target(page: str) -> str | None:
    """Where a <meta http-equiv="refresh"> page sends the browser, relative to the build; None if it does not."""
    match = META_REFRESH.search((HTML_DIR / page).read_text(encoding="utf-8", errors="replace"))
    if match is None:
        return None
    return posixpath.normpath(posixpath.join(posixpath.dirname(page), urllib.parse.unquote(match.group(1).strip())))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's signature)
        pass


@pytest.fixture(scope="module")
def server():
    _require_build()
    handler = functools.partial(_QuietHandler, directory=str(HTML_DIR))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(server):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the Python package playwright is not installed (it is pinned in requirements.txt)")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"no Chromium at {CHROMIUM}; `make chromium` installs Debian's package")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


class _Visit:
    """One page load with everything that went wrong on the way recorded."""

    def __init__(self, browser, server: str, width: int = 1280):
        self.server = server
        self.problems: list[str] = []
        self.blocked: list[str] = []
        self.context = browser.new_context(viewport={"width": width, "height": 860}, service_workers="block")
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.set_default_timeout(PAGE_TIMEOUT_MS)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self._error(f"uncaught exception: {exc}"))
        self.page.on("requestfailed", self._request_failed)
        self.page.on("response", self._response)

    def _route(self, route):
        url = route.request.url
        if urllib.parse.urlsplit(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("blockedbyclient")

    @staticmethod
    def _favicon(url: str) -> bool:
        # Browsers ask for /favicon.ico by themselves; the book sets no favicon.
        return urllib.parse.urlsplit(url).path == "/favicon.ico"

    def _error(self, text: str) -> None:
        if not any(p.search(text) for p in ALLOWED_CONSOLE):
            self.problems.append(text)

    def _console(self, msg) -> None:
        if msg.type != "error":
            return
        where = (msg.location or {}).get("url", "")
        if self._favicon(where) or self._blocked_url(where):
            return  # reported through the response / the blocked-request list instead
        self._error(f"console error: {msg.text} ({where})")

    def _blocked_url(self, url: str) -> bool:
        return bool(url) and url in self.blocked

    def _request_failed(self, request) -> None:
        if request.url in self.blocked:
            return
        self.problems.append(f"request failed: {request.url} ({request.failure})")

    def _response(self, response) -> None:
        if response.status >= 400 and not self._favicon(response.url):
            self.problems.append(f"HTTP {response.status} for {response.url}")

    def open(self, page: str) -> None:
        url = f"{self.server}/{urllib.parse.quote(page)}"
        target = _refresh_target(page)
        if target is None:
            self.page.goto(url, wait_until="load")
        elif not (HTML_DIR / target).is_file():
            self.problems.append(f"redirects to {target}, which is not in the build")
            return
        else:  # a redirect page (jupyter-book's index.html): check where it leads, once it got there
            with self.page.expect_navigation(url=f"{self.server}/{urllib.parse.quote(target)}", wait_until="load"):
                self.page.goto(url, wait_until="commit")
        self.page.wait_for_load_state("networkidle")
        self.wait_for_math()

    def wait_for_math(self) -> None:
        """Wait until MathJax has typeset the page (it typesets once, at startup)."""
        if not self.page.evaluate("() => document.querySelector('span.math, div.math') !== null"):
            return
        try:
            self.page.wait_for_function(
                "() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=MATHJAX_TIMEOUT_MS
            )
        except Exception as exc:  # playwright's TimeoutError; imported lazily with playwright itself
            self.problems.append(f"the page has math but MathJax did not start ({type(exc).__name__})")
            return
        self.page.evaluate("() => MathJax.startup.promise.then(() => true)")

    def unexpected_blocked(self) -> list[str]:
        return [u for u in self.blocked if not u.startswith(ALLOWED_BLOCKED)]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser, server):
    v = _Visit(browser, server)
    try:
        yield v
    finally:
        v.close()


MATH_JS = r"""() => {
  const blocks = [...document.querySelectorAll('span.math, div.math')];
  return {
    blocks: blocks.length,
    containers: document.querySelectorAll('mjx-container').length,
    unrendered: blocks.filter(b => !b.querySelector('mjx-container')).map(b => b.textContent.trim().slice(0, 100)),
    // TeX errors: <merror> nodes, and undefined macros, which MathJax's noundefined package shows
    // as red text instead of failing.
    errors: (window.MathJax?.startup?.document?.math ? [...MathJax.startup.document.math] : [])
      .map(item => ({tex: item.math, mml: MathJax.startup.toMML(item.root)}))
      .filter(m => /<merror/.test(m.mml) || /<mtext[^>]*mathcolor="red"[^>]*>\s*\\/.test(m.mml))
      .map(m => m.tex.trim().slice(0, 100)),
  };
}"""

PROSE_JS = """() => {
  const root = (document.querySelector('main') || document.body).cloneNode(true);
  root.querySelectorAll('pre, code, kbd, samp, script, style, textarea, mjx-container, mjx-assistive-mml, .highlight')
    .forEach(e => e.remove());
  return root.textContent;
}"""

IMAGES_JS = """async () => {
  const imgs = [...document.images];
  imgs.forEach(img => { img.loading = 'eager'; });
  const settle = img => img.complete ? Promise.resolve() : new Promise(resolve => {
    img.addEventListener('load', resolve, {once: true});
    img.addEventListener('error', resolve, {once: true});
  });
  await Promise.race([Promise.all(imgs.map(settle)), new Promise(r => setTimeout(r, 20000))]);
  return imgs.map(img => ({src: img.currentSrc || img.src, width: img.naturalWidth, complete: img.complete}));
}"""

LINKS_JS = "() => [...document.querySelectorAll('a[href]')].map(a => a.href)"


def _check_link(href: str, server: str, page: str) -> str | None:
    """None when a link into the book resolves, else what is wrong with it."""
    if not href.startswith(server + "/"):
        return None  # another host (repository, Binder, Colab, DOI): not part of the offline book
    parts = urllib.parse.urlsplit(href)
    rel = urllib.parse.unquote(parts.path).lstrip("/")
    target = (HTML_DIR / rel).resolve()
    if target.is_dir():
        target = target / "index.html"
    if HTML_DIR not in target.parents or not target.is_file():
        return f"{page}: link to {href} points at a file that is not in the build"
    fragment = urllib.parse.unquote(parts.fragment)
    if fragment and target.suffix == ".html" and fragment not in _scan(target).ids:
        return f"{page}: link to {href} points at #{fragment}, which {target.relative_to(HTML_DIR)} does not contain"
    return None


LAYOUT_JS = r"""(wide) => {
  const root = document.querySelector('main') || document.body;
  const style = e => getComputedStyle(e);
  const scrolls = e => ['auto', 'scroll'].includes(style(e).overflowX);
  const shown = e => e.getClientRects().length > 0 && style(e).visibility !== 'hidden';
  const clipper = e => {  // the nearest ancestor that clips or scrolls horizontally
    for (let a = e.parentElement; a && a !== document.body && a !== document.documentElement; a = a.parentElement) {
      if (style(a).overflowX !== 'visible') return a;
    }
    return null;
  };
  const name = e => e.tagName.toLowerCase() + [...e.classList].map(c => '.' + c).join('');
  const label = e => (e.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 80);
  // kind: [selector, may the element scroll itself?, is it a box (not inline)?]
  const kinds = {
    'display math': ['mjx-container[display="true"]', !wide, true],  // at a laptop's width it must fit
    'equation number': ['div.math > span.eqno', false, true],
    'code': ['div.highlight pre, div.cell_output pre, div.output pre', false, true],
    'rich output': ['div.cell_output div.output.text_html', true, true],
    'table': ['table', true, true],
    'inline math': ['span.math', true, true],  // may scroll inside its own box, as display math
  };
  const counts = {}, problems = [], seen = new Set();
  for (const [kind, [selector, mayScroll, box]] of Object.entries(kinds)) {
    counts[kind] = 0;
    for (const e of root.querySelectorAll(selector)) {
      if (seen.has(e) || !shown(e)) continue;
      seen.add(e);
      counts[kind]++;
      const over = box ? e.scrollWidth - e.clientWidth : 0;
      if (over > 1 && !(mayScroll && scrolls(e))) {
        problems.push(`${kind} ${over}px wider than its box (overflow-x: ${style(e).overflowX}): ${label(e)}`);
        continue;
      }
      const c = clipper(e);
      if (c && kind === 'table' && scrolls(c) && c.children.length === 1) continue;  // scrolls in its wrapper
      const r = e.getBoundingClientRect();
      let left = 0, right = document.documentElement.clientWidth, where = 'the window';
      if (c) {
        left = c.getBoundingClientRect().left + c.clientLeft;
        right = left + c.clientWidth;
        where = `${name(c)} (overflow-x: ${style(c).overflowX})`;
      }
      if (r.right > right + 1 || r.left < left - 1) {
        problems.push(`${kind} [${Math.round(r.left)}, ${Math.round(r.right)}] px is cut by ${where} ` +
                      `[${Math.round(left)}, ${Math.round(right)}]: ${label(e)}`);
      }
    }
  }
  const doc = document.documentElement;
  if (doc.scrollWidth > doc.clientWidth + 1) {
    problems.push(`the page is ${doc.scrollWidth}px wide in a ${doc.clientWidth}px window`);
  }
  return {counts, problems};
}"""


def _first(lines, n: int = 10) -> list[str]:
    """At most n lines, then how many more there were."""
    lines = list(lines)
    return lines[:n] + ([f"... and {len(lines) - n} more like these"] if len(lines) > n else [])


@pytest.mark.parametrize("page", PAGES or ["(no build)"])
def test_page_renders_offline(page, visit, server):
    if page == "(no build)":
        _require_build()
    visit.open(page)
    problems = list(visit.problems)

    blocked = visit.unexpected_blocked()
    if blocked:
        problems.append("requests to other hosts (blocked): " + ", ".join(sorted(set(blocked))))

    math = visit.page.evaluate(MATH_JS)
    problems += _first(f"math not rendered by MathJax: {t!r}" for t in math["unrendered"])
    problems += _first(f"MathJax could not typeset: {t!r}" for t in math["errors"])
    if math["containers"] < math["blocks"]:
        problems.append(f"{math['blocks']} math blocks but only {math['containers']} MathJax outputs")

    prose = visit.page.evaluate(PROSE_JS)
    raw = {}
    for m in RAW_SOURCE.finditer(prose):
        raw.setdefault(m.group(0), " ".join(prose[max(0, m.start() - 50) : m.end() + 50].split()))
    problems += [f"raw source left in the rendered text: {k!r} in ...{c}..." for k, c in raw.items()]

    for img in visit.page.evaluate(IMAGES_JS):
        if not img["complete"] or img["width"] == 0:
            problems.append(f"image did not load: {img['src']}")

    for href in sorted(set(visit.page.evaluate(LINKS_JS))):
        wrong = _check_link(href, server, page)
        if wrong:
            problems.append(wrong)

    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page", PAGES or ["(no build)"])
def test_page_layout(page, width, browser, server):
    """Nothing cut off, nothing pushing the page sideways, at a laptop's and a phone's width."""
    if page == "(no build)":
        _require_build()
    visit = _Visit(browser, server, width=width)
    try:
        visit.open(page)
        visit.page.evaluate("() => document.fonts.ready.then(() => true)")  # MathJax's fonts set the widths
        layout = visit.page.evaluate(LAYOUT_JS, width >= WIDE)
        problems = list(visit.problems) + _first(layout["problems"], 15)
        problems += _small_figure_text(visit.page) + _one_layout_per_figure(visit.page)
    finally:
        visit.close()
    checked = ", ".join(f"{n} {kind}" for kind, n in layout["counts"].items() if n)
    assert not problems, f"{page} at {width}px (checked {checked or 'nothing'}):\n  " + "\n  ".join(problems)


def _png_dpi(path: Path) -> float | None:
    """The horizontal resolution a PNG states in its pHYs chunk (dots per inch), or None."""
    import struct

    data = path.read_bytes()
    i = data.find(b"pHYs")
    if i < 0:
        return None
    ppu_x, _, unit = struct.unpack(">IIB", data[i + 4:i + 13])
    return ppu_x * 0.0254 if unit == 1 else None


def _small_figure_text(page) -> list[str]:
    """Figures whose smallest text (bnlib.plots.style.MIN_POINTS) is shown under MIN_TEXT_PX CSS px: from the
    PNG's size and dpi (its width in inches) and the width the browser shows it at."""
    from bnlib.plots import style as PS

    shown = page.evaluate("""() => [...document.querySelectorAll('main img')].filter(i => i.src.endsWith('.png'))
        .map(i => ({src: i.getAttribute('src'), natural: i.naturalWidth, shown: i.getBoundingClientRect().width}))
        .filter(i => i.shown > 0)""")  # the layout of a figure that this width does not show is not checked
    problems = []
    base = urllib.parse.urlsplit(page.url).path
    for img in shown:
        rel = urllib.parse.unquote(urllib.parse.urlsplit(urllib.parse.urljoin(base, img["src"])).path).lstrip("/")
        dpi = _png_dpi(HTML_DIR / rel)
        if not dpi or not img["natural"]:
            problems.append(f"figure {img['src']} states no dpi: its text size cannot be checked")
            continue
        px = PS.MIN_POINTS / 72 * img["shown"] / (img["natural"] / dpi)
        if px < PS.MIN_TEXT_PX:
            problems.append(f"figure {img['src']}: {PS.MIN_POINTS:g} pt text is shown {px:.1f} px tall "
                            f"(under {PS.MIN_TEXT_PX:g} px)")
    return problems


def _one_layout_per_figure(page) -> list[str]:
    """Each glued figure is written twice (bnlib.plots.style.layouts): as designed (figure.bn-wide, with the
    caption) and with its panels stacked (figure.bn-phone, just before it). Exactly one of the two images shows."""
    figures = page.evaluate("""() => [...document.querySelectorAll('main figure.bn-wide')].map(f => {
        const phone = f.previousElementSibling, shows = e => !!e && e.getBoundingClientRect().width > 0;
        const ok = !!phone && phone.matches('figure.bn-phone');
        return {id: f.id || f.querySelector('img')?.getAttribute('src'), paired: ok,
                shown: [shows(f.querySelector('img')), ok && shows(phone.querySelector('img'))].filter(Boolean).length};
    })""")
    return [f"figure {f['id']}: " + ("no phone layout just before it" if not f["paired"] else
                                     f"{f['shown']} of its two layouts shown, not 1") for f in figures
            if not f["paired"] or f["shown"] != 1]


def _chapters() -> list[str]:
    """The chapters of _toc.yml in reading order (files, without suffix)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files: list[str] = []

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts") or []:
        walk(part.get("chapters"))
    return files


def test_screenshots(visit):
    """The landing page and the first chapter, for a person to look at (_build/screenshots)."""
    SHOTS_DIR.mkdir(parents=True, exist_ok=True)
    visit.open("index.html")
    assert visit.page.url.endswith(".html") and visit.page.title(), "the landing page did not open"
    visit.page.screenshot(path=str(SHOTS_DIR / "landing.png"))

    built = [c for c in _chapters() if (HTML_DIR / f"{c}.html").is_file()]
    notebooks = [c for c in built if (ROOT / f"{c}.ipynb").is_file()]
    chapter = (notebooks or built or [None])[0]
    if chapter is None:
        pytest.skip("no chapter of _toc.yml is built yet; only the landing page was captured")
    visit.open(f"{chapter}.html")
    name = Path(chapter).name
    visit.page.screenshot(path=str(SHOTS_DIR / f"chapter-{name}.png"))
    # Close-ups of the first displayed equation and the first figure, scrolled into view.
    for what, selector in (("math", "div.math"), ("figure", "img[src*='_images/']")):
        element = visit.page.query_selector(selector)
        if element is not None:
            element.evaluate("e => e.scrollIntoView({block: 'center'})")
            visit.page.screenshot(path=str(SHOTS_DIR / f"chapter-{name}-{what}.png"))
    assert not visit.problems, "\n".join(visit.problems)
