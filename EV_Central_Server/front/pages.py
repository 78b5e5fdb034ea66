"""The Front's page: the operator dashboard (rendered with the latest state, then live over Socket.IO)."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template

bp = Blueprint("pages", __name__, template_folder="templates", static_folder="static",
               static_url_path="/front-static")


def _feed():
    from EV_Central_Server.front import feed_of
    return feed_of(current_app)


@bp.get("/")
def index():
    """The dashboard, with the latest known state embedded (no blank page while the socket connects)."""
    return render_template("front/index.html", state=_feed().view())


@bp.get("/front/state")
def state():
    """The latest known state as JSON (what the page receives as 'state' on connect)."""
    return jsonify(_feed().view())


@bp.get("/front/health")
def health():
    """Liveness of the Front, and whether it reaches API_Central."""
    return jsonify({"status": "ok", "central": _feed().view()["central"]})
