"""The operator Front: a Flask + Socket.IO app, separate from CENTRAL, that only talks to API_Central.

``create_app(overrides)`` builds it (config: defaults → environment → overrides); ``socketio`` is
initialised late in the factory (async mode "threading"). One background task (``live.LiveFeed``)
follows API_Central and pushes every change to the pages; the browser never calls API_Central itself:
commands go through the ``commands`` blueprint, which proxies them with timeouts.
"""
from __future__ import annotations

import os
from typing import Optional

from flask import Flask, current_app
from flask_socketio import SocketIO, emit

from common.web import shared_blueprint
from EV_Central_Server.front.central_client import CentralApi
from EV_Central_Server.front.live import LiveFeed

socketio = SocketIO()
EXTENSION = "evc_front"

DEFAULTS = {
    "CENTRAL_API_URL": "http://127.0.0.1:8000",
    "CENTRAL_API_CA": None,      # CA file when API_Central is HTTPS
    "POLL_TIMEOUT_S": 10.0,      # long poll of /api/changes
    "REFRESH_S": 2.0,            # messages, drivers, weather
    "RETRY_S": 1.0,              # while API_Central is unreachable
    "COMMAND_TIMEOUT_S": 5.0,    # proxied operator commands
    "LIVE_FEED": True,           # start the background task on the first page connection
    "API_SESSION_FACTORY": None,  # tests: a fake requests.Session factory
}


def _from_environment() -> dict:
    """Settings from EVC_FRONT_* variables."""
    found = {}
    if os.environ.get("EVC_FRONT_API"):
        found["CENTRAL_API_URL"] = os.environ["EVC_FRONT_API"]
    if os.environ.get("EVC_FRONT_API_CA"):
        found["CENTRAL_API_CA"] = os.environ["EVC_FRONT_API_CA"]
    return found


def create_app(overrides: Optional[dict] = None) -> Flask:
    """The Front app factory."""
    app = Flask(__name__)
    app.config.update(DEFAULTS)
    app.config.update(_from_environment())
    app.config.update(overrides or {})
    session_kwargs = {"ca_file": app.config["CENTRAL_API_CA"]}
    if app.config["API_SESSION_FACTORY"]:
        session_kwargs["session_factory"] = app.config["API_SESSION_FACTORY"]
    url = app.config["CENTRAL_API_URL"]
    feed = LiveFeed(CentralApi(url, **session_kwargs), lambda event, data: socketio.emit(event, data),
                    poll_timeout_s=float(app.config["POLL_TIMEOUT_S"]),
                    refresh_s=float(app.config["REFRESH_S"]), retry_s=float(app.config["RETRY_S"]))
    app.extensions[EXTENSION] = {
        "feed": feed,
        "commands": CentralApi(url, timeout_s=float(app.config["COMMAND_TIMEOUT_S"]), **session_kwargs),
    }

    from EV_Central_Server.front import commands, pages
    app.register_blueprint(shared_blueprint())
    app.register_blueprint(pages.bp)
    app.register_blueprint(commands.bp)
    socketio.init_app(app, async_mode="threading")
    return app


def feed_of(app: Flask) -> LiveFeed:
    """The app's live feed."""
    return app.extensions[EXTENSION]["feed"]


def start_feed(app: Flask) -> bool:
    """Start the one background task (idempotent)."""
    return feed_of(app).start(socketio.start_background_task)


@socketio.on("connect")
def on_connect(auth=None):
    """A page connected: send it everything at once, and make sure the feed runs."""
    app = current_app._get_current_object()
    if app.config["LIVE_FEED"]:
        start_feed(app)
    emit("state", feed_of(app).view())
