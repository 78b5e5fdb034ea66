"""The driver web app (SPEC §11): log in or register, every CP, the live supply, tickets, history, files.

``create_app(hub, overrides)`` builds the Flask app; ``socketio`` is created here and bound in the
factory (STYLE habit 11). One background task pushes each driver's view to the Socket.IO room of
that driver (``driver:<id>``) whenever it changes; a browser joins only the room of the driver its
session cookie names, so a page never receives another driver's data. Actions (request, stop,
services file) are small JSON POSTs that go through the same session commands as the console.
"""
from __future__ import annotations

import logging
from typing import Optional

from flask import (Blueprint, Flask, current_app, flash, jsonify, redirect, render_template, request, session,
                   url_for)
from flask_socketio import SocketIO, emit, join_room

from common.web import shared_blueprint, start_push_task
from EV_Driver.services import ServicesFileError, is_cp_id, parse_services

logger = logging.getLogger(__name__)

socketio = SocketIO()
MAX_UPLOAD_BYTES = 64 * 1024
PUSH_IDLE_S = 1.0
DRIVER_ID_MAX = 64

auth = Blueprint("auth", __name__)
pages = Blueprint("driver", __name__)
api = Blueprint("api", __name__, url_prefix="/api")


def room(driver_id: str) -> str:
    """The Socket.IO room of one driver."""
    return f"driver:{driver_id}"


def _hub():
    return current_app.extensions["evc_hub"]


def _error(code: str, message: str, status: int = 400):
    return jsonify({"error": code, "message": message}), status


# ---------------------------------------------------------------- login / register
@auth.route("/login", methods=["GET", "POST"])
def login():
    """Log in with a driver id and password (checked by CENTRAL)."""
    if request.method == "GET":
        return render_template("login.html", driver_id=request.args.get("driver_id", ""))
    driver_id, password, error = _account_form()
    if error is None:
        result = _hub().login(driver_id, password)
        if result.ok:
            session.clear()
            session["driver_id"] = driver_id
            return redirect(url_for("driver.index"))
        error = result.message
    flash(error, "error")
    return render_template("login.html", driver_id=driver_id), 401


@auth.route("/register", methods=["POST"])
def register():
    """Create a driver account at CENTRAL (then log in)."""
    driver_id, password, error = _account_form()
    if error is None:
        result = _hub().register(driver_id, password)
        if result.ok:
            flash(f"Cuenta {driver_id} creada. Ya puedes iniciar sesión.", "ok")
            return redirect(url_for("auth.login", driver_id=driver_id))
        error = result.message
    flash(error, "error")
    return render_template("login.html", driver_id=driver_id, register_id=driver_id, show_register=True), 400


@auth.route("/logout", methods=["POST"])
def logout():
    """Forget this browser's login and stop that driver's link to CENTRAL (it restarts on the next login)."""
    driver_id = session.get("driver_id")
    session.clear()
    if driver_id:
        _hub().release(driver_id)
    return redirect(url_for("auth.login"))


def _account_form() -> tuple[str, str, Optional[str]]:
    """The driver id and password posted by the login or register form, and what is wrong with them (or None)."""
    driver_id = request.form.get("driver_id", "").strip()
    password = request.form.get("password", "")
    return driver_id, password, _account_form_error(driver_id, password)


def _account_form_error(driver_id: str, password: str) -> Optional[str]:
    from EV_Driver.EV_Driver import DRIVER_ID_PATTERN  # the same rule as the command line
    if not driver_id:
        return "Escribe tu identificador de conductor."
    if not DRIVER_ID_PATTERN.match(driver_id):
        return "Identificador no válido (letras, números, . _ - @; hasta 64)."
    if not password:
        return "Escribe la contraseña."
    if len(password) > 256:
        return "Contraseña demasiado larga."
    return None


# ---------------------------------------------------------------- the page
@pages.route("/")
def index():
    """The driver's page (the first view is embedded, later ones arrive over Socket.IO)."""
    driver_id = session.get("driver_id")
    if not driver_id:
        return redirect(url_for("auth.login"))
    view = _hub().runtime(driver_id).view()
    return render_template("driver.html", driver_id=driver_id, view=view)


# ---------------------------------------------------------------- JSON actions
def _runtime_or_401():
    driver_id = session.get("driver_id")
    if not driver_id:
        return None, _error("NOT_LOGGED_IN", "Inicia sesión primero.", 401)
    return _hub().runtime(driver_id), None


@api.route("/state")
def state():
    """The current view of the logged-in driver."""
    runtime, error = _runtime_or_401()
    return error or jsonify(runtime.view())


@api.route("/request/<cp_id>", methods=["POST"])
def request_supply(cp_id: str):
    """Ask CENTRAL for a supply at a CP (the console's 'request <CP>')."""
    runtime, error = _runtime_or_401()
    if error:
        return error
    if not is_cp_id(cp_id):
        return _error("BAD_CP_ID", "Identificador de punto de carga no válido.")
    runtime.app.submit(f"request {cp_id}")
    return jsonify({"ok": True, "cp_id": cp_id}), 202


@api.route("/stop", methods=["POST"])
def stop_supply():
    """Stop the driver's supply (the console's 'stop')."""
    runtime, error = _runtime_or_401()
    if error:
        return error
    runtime.app.submit("stop")
    return jsonify({"ok": True}), 202


@api.route("/services", methods=["POST"])
def upload_services():
    """Run a services file (one CP id per line) in file mode: i/N progress and the waits."""
    runtime, error = _runtime_or_401()
    if error:
        return error
    upload = request.files.get("file")
    if upload is None:
        return _error("NO_FILE", "Elige un fichero de servicios.")
    try:
        text = upload.read(MAX_UPLOAD_BYTES + 1).decode("utf-8")
    except UnicodeDecodeError:
        return _error("BAD_FILE", "El fichero no es texto UTF-8.")
    if len(text.encode("utf-8")) > MAX_UPLOAD_BYTES:
        return _error("FILE_TOO_LARGE", f"El fichero supera {MAX_UPLOAD_BYTES // 1024} KB.", 413)
    try:
        cp_ids = parse_services(text)
    except ServicesFileError as exc:
        return _error("BAD_FILE", f"Fichero no válido: {exc}")
    view = runtime.view(0)
    batch = (view or {}).get("batch")
    if batch and not batch["finished"]:
        return _error("BATCH_RUNNING", "Ya hay un fichero en curso; espera a que termine.", 409)
    runtime.app.submit_batch(cp_ids)
    return jsonify({"ok": True, "count": len(cp_ids)}), 202


@api.errorhandler(413)
def too_large(_exc):
    """Oversize upload."""
    return _error("FILE_TOO_LARGE", f"El fichero supera {MAX_UPLOAD_BYTES // 1024} KB.", 413)


# ---------------------------------------------------------------- Socket.IO
def _on_connect(auth_data=None):
    """A page connects: only a logged-in driver, and only to its own room."""
    driver_id = session.get("driver_id")
    if not driver_id:
        return False
    join_room(room(driver_id))
    if current_app.config["PUSH_TASK"]:
        start_push_task(socketio, current_app._get_current_object(), push_views)
    emit("state", _hub().runtime(driver_id).view())
    return None


def push_views(app: Flask, rounds: Optional[int] = None) -> None:
    """The one background task: when any driver's view changed, push it to that driver's room."""
    hub = app.extensions["evc_hub"]
    sent: dict[str, dict] = {}
    while rounds is None or rounds > 0:
        hub.changed.wait(PUSH_IDLE_S)
        hub.changed.clear()
        for runtime in hub.runtimes():
            view = runtime.view(0)
            if view is not None and sent.get(runtime.driver_id) is not view:
                sent[runtime.driver_id] = view
                socketio.emit("state", view, to=room(runtime.driver_id))
        if rounds is not None:
            rounds -= 1


# ---------------------------------------------------------------- factory
def create_app(hub, overrides: Optional[dict] = None) -> Flask:
    """The driver web app for a DriverHub (config: defaults, then overrides)."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY=None, MAX_CONTENT_LENGTH=MAX_UPLOAD_BYTES + 16 * 1024,
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_NAME="evc_driver", PUSH_TASK=True)
    app.config.update(overrides or {})
    if not app.config["SECRET_KEY"]:
        raise ValueError("the driver web app needs a SECRET_KEY (see EV_Driver.web.hub.secret_key)")
    app.extensions["evc_hub"] = hub
    app.register_blueprint(shared_blueprint())
    app.register_blueprint(auth)
    app.register_blueprint(pages)
    app.register_blueprint(api)
    socketio.init_app(app, async_mode="threading")  # same-origin pages only (the default)
    socketio.on_event("connect", _on_connect)
    return app
