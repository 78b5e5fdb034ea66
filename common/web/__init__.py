"""What every web page of the project shares: the vendored Socket.IO client, the state colours and base styles.

``shared_blueprint()`` serves them under ``/shared/`` (no CDN: pages work on machines without internet).
The Socket.IO client is socket.io-client 4.8.4 (MIT), copied from its npm package's dist/ folder.
``/shared/states.css`` is generated from ``common.domain.STATE_COLOURS``, so every screen colours a
state the same way (SPEC §3): use ``class="state-<STATE>"``. ``/shared/base.css`` holds the base styles
of the Engine panel and the driver web app (layout, cards, buttons, meters, tickets, messages, login);
they link it after ``states.css`` and before their own stylesheet; ``/shared/live.js`` holds the small
helpers of their scripts (escaping, redraw-on-change, the elapsed-time clock, the Socket.IO link).
"""
from __future__ import annotations

import threading
from pathlib import Path

from flask import Blueprint, Flask, Response, request

from common.domain import STATE_COLOURS

STATIC = Path(__file__).resolve().parent / "static"
COLOUR_HEX = {"grey": "#9e9e9e", "green": "#2e7d32", "orange": "#ef6c00", "red": "#c62828"}


def states_css() -> str:
    """CSS classes state-<STATE> with the colour of each CP state."""
    rules = [f".state-{state.value} {{ background: {COLOUR_HEX[colour]}; color: #fff; }}"
             for state, colour in STATE_COLOURS.items()]
    return "\n".join(rules) + "\n"


def shared_blueprint() -> Blueprint:
    """A blueprint serving /shared/socket.io.min.js, /shared/live.js, /shared/base.css and /shared/states.css."""
    bp = Blueprint("shared", __name__, static_folder=str(STATIC), static_url_path="/shared")
    bp.add_url_rule("/shared/states.css", "states_css",
                    lambda: Response(states_css(), mimetype="text/css", headers={"Cache-Control": "max-age=60"}))
    return bp


_task_lock = threading.Lock()


def start_push_task(socketio, app: Flask, task) -> None:
    """Start ``task(app)`` as the app's one Socket.IO background task (the first page to connect starts it)."""
    with _task_lock:
        if app.extensions.get("evc_push_task") is None:
            app.extensions["evc_push_task"] = socketio.start_background_task(task, app)


def serve(app: Flask, host: str, port: int, name: str = "web"):
    """Bind now (an error such as a port in use is raised here, to the caller) and serve on a thread."""
    from werkzeug.serving import make_server  # the threaded dev server: what Socket.IO's threading mode uses

    try:
        server = make_server(host, port, app, threaded=True)
    except SystemExit as exc:  # werkzeug prints "Address already in use" and exits: keep our program alive
        raise OSError(f"cannot listen on {host}:{port} (address in use?)") from exc
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    return server


def local_url(host: str, port: int) -> str:
    """The page's address as a browser on this machine opens it (a wildcard bind is reached on 127.0.0.1)."""
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"


def cross_site_post() -> bool:
    """True for a POST another site's page made the browser send (its Origin or Referer is not this host).

    Browsers always send Origin on cross-site POSTs; command-line clients send neither and are let through.
    """
    source = request.headers.get("Origin") or request.headers.get("Referer")
    return bool(source) and not source.rstrip("/").startswith(request.host_url.rstrip("/"))
