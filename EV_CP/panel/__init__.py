"""The Engine's owner panel (SPEC §11): the CP's state, its links, the live supply and the buttons.

``create_app(bridge, overrides)`` builds the Flask app; ``socketio`` is bound in the factory and one
background task pushes the view to every open page when it changes (STYLE habit 11). Buttons POST
``/api/command/<name>`` (request, plug, unplug, ko, recover), which the bridge turns into the very
console key the operator would press, so the panel and the console behave identically.
The panel has no login: it is the CP owner's screen, served on 127.0.0.1 unless ``--web-host`` says
otherwise.
"""
from __future__ import annotations

from typing import Optional

from flask import Blueprint, Flask, current_app, jsonify, render_template
from flask_socketio import SocketIO, emit

from common.web import cross_site_post, shared_blueprint, start_push_task
from EV_CP.panel.bridge import COMMAND_KEYS

socketio = SocketIO()
PUSH_IDLE_S = 1.0

pages = Blueprint("panel", __name__)
api = Blueprint("api", __name__, url_prefix="/api")


def _bridge():
    return current_app.extensions["evc_bridge"]


@pages.route("/")
def index():
    """The panel page (first view embedded; later ones arrive over Socket.IO)."""
    return render_template("panel.html", view=_bridge().view(1.0), config=current_app.config)


@api.route("/state")
def state():
    """The current view as JSON."""
    return jsonify(_bridge().view())


@api.route("/command/<name>", methods=["POST"])
def command(name: str):
    """A panel button: the same command path as the Engine's console keys."""
    if cross_site_post():
        return jsonify({"error": "CROSS_SITE", "message": "commands are accepted only from this panel"}), 403
    if not _bridge().submit(name):
        return jsonify({"error": "UNKNOWN_COMMAND",
                        "message": f"orden desconocida {name[:30]!r}; válidas: {', '.join(COMMAND_KEYS)}"}), 404
    return jsonify({"ok": True, "command": name}), 202


def _on_connect(auth_data=None):
    """A page connects: start the push task once and send the current view."""
    if current_app.config["PUSH_TASK"]:
        start_push_task(socketio, current_app._get_current_object(), push_views)
    emit("state", _bridge().view())


def push_views(app: Flask, rounds: Optional[int] = None) -> None:
    """The one background task: push the view to every page whenever it changed."""
    bridge = app.extensions["evc_bridge"]
    sent = None
    while rounds is None or rounds > 0:
        bridge.changed.wait(PUSH_IDLE_S)
        bridge.changed.clear()
        view = bridge.view()
        if view is not None and view is not sent:
            sent = view
            socketio.emit("state", view)
        if rounds is not None:
            rounds -= 1


def create_app(bridge, overrides: Optional[dict] = None) -> Flask:
    """The Engine panel for a PanelBridge (config: defaults, then overrides)."""
    app = Flask(__name__)
    app.config.update(PUSH_TASK=True, MONITOR_ADDRESS="", CENTRAL_URL="")
    app.config.update(overrides or {})
    app.extensions["evc_bridge"] = bridge
    app.register_blueprint(shared_blueprint())
    app.register_blueprint(pages)
    app.register_blueprint(api)
    socketio.init_app(app, async_mode="threading")
    socketio.on_event("connect", _on_connect)
    return app
