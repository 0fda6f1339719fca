"""A small web site on 127.0.0.1 for the fetch tests, and the pages it serves.

`LocalSite` runs a threaded http.server on port 0. One route never answers: its handler
waits on `release`, an Event the fixture sets at teardown, so the timeout tests need no
sleeping server and leave no thread behind.
"""

from __future__ import annotations

import json
import threading
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARTICLE_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Tidal Gardens of the Northern Coast - The Field Journal</title>
<style>body { font-family: sans-serif; } .promo { color: red; }</style>
<script>window.dataLayer = []; function track(e) { dataLayer.push(e); }</script>
</head>
<body>
<div class="cookie-banner" id="cookie-consent">We use cookies to improve your experience.
<button>Accept all</button></div>
<header class="site-header">
  <a href="/" class="logo">The Field Journal</a>
  <nav class="main-nav">
    <ul>
      <li><a href="/news">News</a></li>
      <li><a href="/science">Science</a></li>
      <li><a href="/subscribe">Subscribe</a></li>
    </ul>
  </nav>
</header>
<div class="layout">
<aside class="sidebar">
  <h3>Trending now</h3>
  <ul><li><a href="/trending/1">Ten gadgets you need this summer</a></li></ul>
  <div class="promo">Subscribe today and save 50 percent on your first year!</div>
</aside>
<main>
<article>
  <h1>Tidal Gardens of the Northern Coast</h1>
  <p class="byline">By Mira Okafor, March 3</p>
  <p>Every spring the kelp forests along the northern coast put on a quiet show. Marine biologists
  from the <a href="https://example.org/institute">Coastal Research Institute</a> have spent a decade
  measuring how quickly the fronds recover after winter storms.</p>
  <p>Their findings, published in the <a href="/journals/marine-ecology">Journal of Marine Ecology</a>,
  suggest that recovery depends less on water temperature than on the sea urchins that graze the
  young shoots.</p>
  <h2>Counting urchins by hand</h2>
  <p>Divers swim fixed transects and count every urchin inside a one metre square frame.</p>
  <ul>
    <li>Forty permanent sites, marked with steel pins</li>
    <li>Counts every six weeks from March to October</li>
  </ul>
  <h2>What the otters change</h2>
  <p>Where otters returned, urchin density fell by more than half within three years.</p>
  <blockquote>We expected temperature to dominate. The otters turned out to matter far more.</blockquote>
</article>
<section class="comments">
  <h3>Comments (2)</h3>
  <div class="comment">Does anyone know where to buy cheap flights?</div>
</section>
</main>
</div>
<footer class="site-footer">
  <p>Copyright 2024 The Field Journal. All rights reserved.</p>
  <a href="/privacy">Privacy policy</a> | <a href="/terms">Terms of use</a>
</footer>
<script>track({page: "article"});</script>
<noscript>Please enable JavaScript for the best experience.</noscript>
</body>
</html>
"""

# Static HTML is only a shell: the heading is written in the load handler, and the
# paragraph after a fetch() of /api/forecast completes, as single-page apps do.
SCRIPTED_HTML = """<!DOCTYPE html>
<html><head><title>Forecast</title></head>
<body>
<div id="app">Loading...</div>
<script>
window.addEventListener("load", () => {
  document.getElementById("app").innerHTML = "<h1>Harbour forecast</h1>";
  fetch("/api/forecast").then(r => r.json()).then(data => {
    const p = document.createElement("p");
    p.id = "forecast";
    p.textContent = data.summary;
    document.getElementById("app").appendChild(p);
  });
});
</script>
</body></html>
"""
FORECAST = {"summary": "Light westerly winds and calm seas until Friday."}

# Content that appears only after a timer: what --wait-for is for.
DELAYED_HTML = """<!DOCTYPE html>
<html><head><title>Late</title></head><body>
<p>Static intro.</p>
<script>
setTimeout(() => {
  const div = document.createElement("div");
  div.className = "late-arrival";
  div.textContent = "The late paragraph has arrived.";
  document.body.appendChild(div);
}, 700);
</script>
</body></html>
"""

# Pages whose script fills them in after "load", as hydration and timers do.
def filled_after(ms: int) -> str:
    return f"""<!DOCTYPE html>
<html><head><title>Report</title></head><body>
<div id="app">Loading...</div>
<script>
setTimeout(() => {{
  document.getElementById("app").innerHTML =
    "<h1>Quarterly harbour report</h1><p>Tonnage rose by a tenth, led by the timber trade.</p>";
}}, {ms});
</script>
</body></html>
"""


# A page that never stops changing (a live clock): settling must give up, not hang.
TICKING_HTML = """<!DOCTYPE html>
<html><head><title>Live</title></head><body>
<h1>Live tide gauge</h1><p>Readings update continuously.</p><p id="tick">0</p>
<script>
let n = 0;
setInterval(() => { document.getElementById("tick").textContent = String(++n); }, 50);
</script>
</body></html>
"""

MEMBERS_HTML = """<!DOCTYPE html>
<html><head><title>Members</title></head><body>
<h1>Members area</h1><p>The annual meeting is on Thursday in the boathouse.</p>
</body></html>
"""
SESSION_COOKIE = ("session", "letmein")


class _Handler(BaseHTTPRequestHandler):
    server: LocalSite

    def log_message(self, format, *args):  # keep test output clean
        pass

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _html(self, html: str, status: int = 200, headers: dict | None = None) -> None:
        self._send(status, html.encode("utf-8"), "text/html; charset=utf-8", headers)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _cookies(self) -> dict[str, str]:
        jar = SimpleCookie(self.headers.get("Cookie", ""))
        return {name: morsel.value for name, morsel in jar.items()}

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?")[0]
        self.server.requests.append(path)
        if path == "/article":
            self._html(ARTICLE_HTML)
        elif path == "/scripted":
            self._html(SCRIPTED_HTML)
        elif path == "/api/forecast":
            self._send(200, json.dumps(FORECAST).encode(), "application/json")
        elif path == "/delayed":
            self._html(DELAYED_HTML)
        elif path.startswith("/filled-after/"):
            self._html(filled_after(int(path.rsplit("/", 1)[1])))
        elif path == "/ticking":
            self._html(TICKING_HTML)
        elif path == "/members":
            if self._cookies().get(SESSION_COOKIE[0]) == SESSION_COOKIE[1]:
                self._html(MEMBERS_HTML)
            else:
                self._html("<h1>Forbidden</h1><p>Log in first.</p>", status=403)
        elif path == "/login":
            # A site that logs anyone in: the cookie must not follow into later requests.
            self._html("<h1>Welcome</h1>", headers={
                "Set-Cookie": f"{SESSION_COOKIE[0]}={SESSION_COOKIE[1]}; Path=/"})
        elif path.startswith("/redirect/"):
            hops = int(path.rsplit("/", 1)[1])
            self._redirect(f"/redirect/{hops - 1}" if hops > 1 else "/article")
        elif path == "/loop":
            self._redirect("/loop")
        elif path == "/report.pdf":
            self._send(200, self.server.pdf, "application/pdf")
        elif path == "/download":
            self._send(200, self.server.pdf, "application/octet-stream",
                       {"Content-Disposition": 'attachment; filename="report.pdf"'})
        elif path == "/notes.txt":
            self._send(200, b"plain notes\nsecond line\n", "text/plain; charset=utf-8")
        elif path == "/unavailable":
            self._html("<h1>Down for maintenance</h1>", status=503)
        elif path == "/hang":
            self.server.release.wait()  # answered only when the test site shuts down
        else:
            self._html("<h1>Not found</h1>", status=404)

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer


class LocalSite(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, pdf: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.pdf = pdf
        self.release = threading.Event()
        self.requests: list[str] = []
        self._thread = threading.Thread(target=self.serve_forever, name="test-site", daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def start(self) -> LocalSite:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()
        self._thread.join()


def cookies_txt() -> str:
    """A Netscape cookies.txt holding the members' session cookie for 127.0.0.1."""
    name, value = SESSION_COOKIE
    return ("# Netscape HTTP Cookie File\n"
            f"#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t0\t{name}\t{value}\n")
