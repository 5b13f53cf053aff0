"""The viewer's web server: the standard library's threaded HTTP server on 127.0.0.1, read-only.

Routes: `/` (the prompt list and its filters), `/prompt?run=&round=&id=`
(one prompt), `/overview?round=` (metrics, judge report cards, export counts,
arms side by side). Each request runs its queries on its own DuckDB cursor
over the one read-only index connection, so pages load in parallel and
nothing a request does can change a run.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from thresher.view import pages, queries
from thresher.view.index import index_summary, open_index

DEFAULT_PORT = 8765


class Viewer:
    """The index connection and what every page needs from it (the filters' choices, the run names)."""

    def __init__(self, runs: Sequence[str | Path], cache: Path | None = None, progress: bool = True):
        self.con = open_index(runs, cache, progress)
        self.choices = queries.choices(self.con)
        self.runs = self.choices["runs"]

    def render(self, path: str, query: dict[str, list[str]]) -> tuple[int, str]:
        """(HTTP status, HTML) for one request; a bad query value is a 400 that names it."""
        cur = self.con.cursor()
        try:
            if path == "/":
                f = queries.Filters.parse(query)
                start = time.perf_counter()
                rows, total = queries.prompt_page(cur, f)
                ms = 1000 * (time.perf_counter() - start)
                return 200, pages.prompt_list(rows, total, f, self.choices, ms)
            if path == "/prompt":
                run, rnd, pid = _int(query, "run"), _int(query, "round"), _str(query, "id")
                detail = queries.prompt_detail(cur, run, rnd, pid)
                if detail is None:
                    return 404, pages.error_page(404, f"no prompt {pid!r} in run {run}, round {rnd}", self.runs)
                return 200, pages.prompt_view(detail, self.runs)
            if path == "/overview":
                rnd = _int(query, "round") if query.get("round", [""])[-1] else None
                return 200, pages.overview_view(queries.overview(cur, rnd), self.runs, rnd)
            return 404, pages.error_page(404, f"no page {path}", self.runs)
        except queries.BadQuery as e:
            return 400, pages.error_page(400, str(e), self.runs)
        finally:
            cur.close()

    def close(self) -> None:
        self.con.close()


def _str(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name) or [""]
    if not values[-1]:
        raise queries.BadQuery(f"{name}: required")
    return values[-1]


def _int(query: dict[str, list[str]], name: str) -> int:
    value = _str(query, name)
    try:
        return int(value)
    except ValueError:
        raise queries.BadQuery(f"{name}: expected a whole number, got {value!r}") from None


def _handler(viewer: Viewer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "thresher-view"

        def do_GET(self) -> None:  # the standard library's name
            url = urlsplit(self.path)
            if url.path == "/favicon.ico":  # browsers ask; there is none
                self.send_response(204)
                self.end_headers()
                return
            status, html = viewer.render(url.path, parse_qs(url.query, keep_blank_values=True))
            data = html.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            if str(int(code) if isinstance(code, int) else code).startswith(("4", "5")):  # only failures are news
                super().log_request(code, size)

    return Handler


def free_port(preferred: int = DEFAULT_PORT) -> int:
    """`preferred` when it is free on 127.0.0.1, else any free port."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError("no free port on 127.0.0.1")


class ViewServer:
    """A running viewer: `url`, and `close()` to stop it (also a context manager)."""

    def __init__(self, viewer: Viewer, port: int | None = None):
        self.viewer = viewer
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port if port is not None else free_port()), _handler(viewer))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="thresher-view", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
        self.viewer.close()

    def __enter__(self):  # returns self, as context managers do
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(runs: Sequence[str | Path], port: int | None = None, cache: Path | None = None) -> None:
    """Index the runs, print the URL, and serve until Ctrl-C."""
    viewer = Viewer(runs, cache)
    s = index_summary(viewer.con)
    try:
        server = ViewServer(viewer, port)
    except OSError as e:
        viewer.close()
        from thresher.errors import UserError

        raise UserError(f"--port {port}: cannot listen on 127.0.0.1 ({e.strerror or e})") from None
    print(f"indexed {s['runs']} run(s): {s['rounds']} rounds, {s['prompts']:,} prompts, {s['candidates']:,} candidates, "
          f"{s['verdicts']:,} verdicts", file=sys.stderr)
    print(f"thresher view: {server.url}  (Ctrl-C to stop)", flush=True)
    try:
        server.thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
