"""API_Central: the REST interface of CENTRAL (documented in docs/openapi.yaml)."""
from __future__ import annotations

import logging
from typing import Optional

from flask import Blueprint, Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from common.domain import plain, validate_cp

logger = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api")


def error(code: str, message: str, status: int):
    """JSON error body {"error": CODE, "message": text} with a 4xx/5xx status."""
    return jsonify({"error": code, "message": message}), status


def _service():
    return current_app.config["SERVICE"]


def _repo():
    return current_app.config["REPO"]


@bp.get("/health")
def health():
    """Liveness of API_Central."""
    return jsonify({"status": "ok"})


@bp.get("/charging_points")
def list_cps():
    """Every CP with its derived state and live supply."""
    return jsonify(_service().snapshot())


@bp.get("/charging_points/<cp_id>")
def get_cp(cp_id: str):
    """One CP."""
    view = _service().get(cp_id)
    if view is None:
        return error("CP_NOT_FOUND", f"CP {cp_id} does not exist", 404)
    return jsonify(view)


def _command(cp_id: Optional[str], action: str):
    service = _service()
    if cp_id is not None and service.get(cp_id) is None:
        return error("CP_NOT_FOUND", f"CP {cp_id} does not exist", 404)
    targets = service.cp_ids() if cp_id is None else [cp_id]
    for target in targets:
        (service.stop_cp if action == "stop" else service.resume_cp)(target, actor="api")
    return jsonify({"command": action, "charging_points": targets, "result": "ok"})


@bp.post("/charging_points/<cp_id>/stop")
def stop_one(cp_id: str):
    """Operator stop of one CP."""
    return _command(cp_id, "stop")


@bp.post("/charging_points/<cp_id>/resume")
def resume_one(cp_id: str):
    """Operator resume of one CP."""
    return _command(cp_id, "resume")


@bp.post("/charging_points/stop")
def stop_all():
    """Operator stop of every CP."""
    return _command(None, "stop")


@bp.post("/charging_points/resume")
def resume_all():
    """Operator resume of every CP."""
    return _command(None, "resume")


@bp.get("/supplies")
def list_supplies():
    """Supplies, newest first: ?status=active|finished&cp_id=&driver_id=&limit= (max 500)."""
    status = request.args.get("status")
    if status not in (None, "active", "finished"):
        return error("BAD_FILTER", "status must be active or finished", 400)
    try:
        limit = int(request.args.get("limit", "100"))
    except ValueError:
        return error("BAD_FILTER", "limit must be a whole number", 400)
    if not 1 <= limit <= 500:
        return error("BAD_FILTER", "limit must be between 1 and 500", 400)
    live = {s["supply"]["supply_id"]: s["supply"] for s in _service().snapshot() if s["supply"]}
    rows = _repo().list_supplies(status, request.args.get("cp_id"), request.args.get("driver_id"), limit)
    return jsonify([_supply_json(row, live.get(row["supply_id"])) for row in rows])


def _supply_json(row: dict, live: Optional[dict]) -> dict:
    out = {k: (v.isoformat() if hasattr(v, "isoformat") else str(v) if v is not None and not isinstance(v, str) else v)
           for k, v in row.items()}
    out.update(price_eur_kwh=plain(row["price_eur_kwh"]), power_kw=plain(row["power_kw"]))
    if live:
        out.update(energy_kwh=live["energy_kwh"], amount_eur=live["amount_eur"], power_kw=live["power_kw"])
    return out


@bp.get("/changes")
def changes():
    """Long poll: waits until the network changes after ?since=<version> (at most ?timeout=s, default 20)."""
    try:
        since = int(request.args.get("since", "-1"))
        timeout = float(request.args.get("timeout", "20"))
    except ValueError:
        return error("BAD_FILTER", "since must be a whole number and timeout a number of seconds", 400)
    if not 0 <= timeout <= 30:
        return error("BAD_FILTER", "timeout must be between 0 and 30 seconds", 400)
    version = _service().wait_change(since, timeout)
    cps = _service().snapshot()
    return jsonify({"version": version, "charging_points": cps,
                    "ongoing": [cp["supply"] for cp in cps if cp["supply"]]})


@bp.post("/charging_points")
def add_cp():
    """Register a new CP: {cp_id, address, city, country?, price_eur_kwh, power_kw, zone?}; 409 if it exists."""
    body = request.get_json(silent=True)
    record, problem = validate_cp(body)
    if problem:
        return error("BAD_CP", problem, 400)
    if _service().get(record["cp_id"]) is not None:
        return error("CP_EXISTS", f"CP {record['cp_id']} already exists", 409)
    return jsonify(_service().add_cp(record, actor="api")), 201


@bp.delete("/charging_points/<cp_id>")
def remove_cp(cp_id: str):
    """Deregister a CP (409 while it has a supply)."""
    try:
        _service().remove_cp(cp_id, actor="api")
    except KeyError:
        return error("CP_NOT_FOUND", f"CP {cp_id} does not exist", 404)
    except ValueError as exc:
        return error("CP_BUSY", str(exc), 409)
    return jsonify({"cp_id": cp_id, "result": "removed"})


@bp.get("/drivers")
def list_drivers():
    """Registered driver ids (no personal data)."""
    return jsonify([{"driver_id": r["driver_id"], "created_at": r["created_at"].isoformat()}
                    for r in _repo().list_drivers()])


@bp.get("/messages")
def list_messages():
    """Application messages, newest first."""
    rows = _repo().app_messages(200)
    return jsonify([{**r, "ts": r["ts"].isoformat()} for r in rows])


def create_app(service, repo, overrides: Optional[dict] = None) -> Flask:
    """API_Central app factory."""
    app = Flask(__name__)
    app.config.update(SERVICE=service, REPO=repo, JSON_SORT_KEYS=False)
    app.config.update(overrides or {})
    app.register_blueprint(bp)
    from EV_Central_Server.central.api_weather import bp as weather_bp  # here: api_weather imports error() from this module
    app.register_blueprint(weather_bp)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return error(exc.name.upper().replace(" ", "_"), exc.description or exc.name, exc.code or 500)

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        logger.exception("API error")
        return error("INTERNAL", "internal error; see CENTRAL's log", 500)

    return app
