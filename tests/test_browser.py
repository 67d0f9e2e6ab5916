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

A static check also asserts that no page or stylesheet refers to a resource on another host.
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

# Console messages known to be harmless (see ../shared/DESIGN.md): sphinx-thebe's script is
# included twice on notebook pages, and the pydata theme logs an unknown stored theme mode.
ALLOWED_CONSOLE = (
    re.compile(r"Identifier 'THEBE_JS_URL' has already been declared"),
    re.compile(r"Got invalid theme mode"),
)
# Requests to other hosts that are blocked without failing a page: sphinx-thebe's library, which
# a page fetches only when the reader clicks the live-code launch button.
ALLOWED_BLOCKED = ("https://unpkg.com/thebe",)
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

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        for name in self.RESOURCE_ATTRS.get(tag, ()):
            if a.get(name):
                self.resources.extend(part.strip().split(" ")[0] for part in a[name].split(","))
        if tag == "link" and a.get("href") and self.LINK_RELS.intersection((a.get("rel") or "").lower().split()):
            self.resources.append(a["href"])


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

    def __init__(self, browser, server: str):
        self.server = server
        self.problems: list[str] = []
        self.blocked: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 860}, service_workers="block")
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
