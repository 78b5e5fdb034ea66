"""Operator commands: the page POSTs here and the Front calls API_Central (the browser never does).

Every answer is JSON ``{"ok": true, "message": text}`` or ``{"ok": false, "error": CODE, "message": text}``
with API_Central's own 4xx status (503 when it cannot be reached), so the page can show the reason.
Only JSON bodies are accepted: a cross-site HTML form cannot send one, which keeps other sites from
driving the operator's browser into stopping CPs.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Optional
from urllib.parse import quote

from flask import Blueprint, current_app, jsonify, request

from EV_Central_Server.front.central_client import ApiError, CentralApi, CentralUnavailable
from EV_Central_Server.front.live import UNREACHABLE_TEXT

logger = logging.getLogger(__name__)
bp = Blueprint("commands", __name__, url_prefix="/front")
THRESHOLDS_MISSING_TEXT = ("API_Central todavía no permite cambiar los umbrales del clima "
                           "(PUT /api/weather/thresholds no existe)")
CP_FIELDS = ("cp_id", "address", "city", "country", "zone", "price_eur_kwh", "power_kw")


def _api() -> CentralApi:
    from EV_Central_Server.front import EXTENSION
    return current_app.extensions[EXTENSION]["commands"]


def fail(code: str, message: str, status: int):
    """A readable error for the page."""
    return jsonify({"ok": False, "error": code, "message": message}), status


def proxy(call: Callable[[CentralApi], Any], done: str, missing: Optional[str] = None):
    """Run one API_Central call; answer ok with `done`, or the API's error as a readable message."""
    try:
        result = call(_api())
    except CentralUnavailable as exc:
        logger.warning("command not sent: %s", exc)
        return fail("CENTRAL_UNREACHABLE", f"{UNREACHABLE_TEXT}: la orden no se ha enviado", 503)
    except ApiError as exc:
        if missing and exc.status in (404, 405) and exc.code in ("NOT_FOUND", "METHOD_NOT_ALLOWED"):
            return fail("NOT_AVAILABLE", missing, 501)
        return fail(exc.code, f"API_Central: {exc.message}", exc.status if 400 <= exc.status < 500 else 502)
    return jsonify({"ok": True, "message": done, "result": result})


def _json_body():
    """The request's JSON object, or None (HTML forms and other content types are refused)."""
    if not request.is_json:
        return None
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


def _needs_json(view):
    def wrapper(*args, **kwargs):
        if _json_body() is None:
            return fail("BAD_REQUEST", "Se esperaba un cuerpo JSON (objeto)", 400)
        return view(*args, **kwargs)
    wrapper.__name__, wrapper.__doc__ = view.__name__, view.__doc__
    return wrapper


def _cp_path(cp_id: str) -> str:
    return f"/api/charging_points/{quote(cp_id, safe='')}"


@bp.post("/charging_points/<cp_id>/stop")
@_needs_json
def stop_one(cp_id: str):
    """Stop one CP (ends its supply; the driver gets a STOPPED_BY_OPERATOR ticket)."""
    return proxy(lambda api: api.post(_cp_path(cp_id) + "/stop"), f"{cp_id}: parado por el operador")


@bp.post("/charging_points/<cp_id>/resume")
@_needs_json
def resume_one(cp_id: str):
    """Resume one CP (clears the operator's reason only)."""
    return proxy(lambda api: api.post(_cp_path(cp_id) + "/resume"), f"{cp_id}: reanudado")


@bp.post("/charging_points/stop")
@_needs_json
def stop_all():
    """Stop every CP."""
    return proxy(lambda api: api.post("/api/charging_points/stop"), "Todos los puntos de carga parados")


@bp.post("/charging_points/resume")
@_needs_json
def resume_all():
    """Resume every CP."""
    return proxy(lambda api: api.post("/api/charging_points/resume"), "Todos los puntos de carga reanudados")


@bp.post("/charging_points")
def add_cp():
    """Register a CP (id, address, city, price, power, zone); API_Central validates the values."""
    body = _json_body()
    error = None
    if body is None:
        error = "Se esperaba un cuerpo JSON (objeto)"
    elif not str(body.get("cp_id") or "").strip():
        error = "Falta el identificador del punto de carga"
    if error:
        return fail("BAD_CP", error, 400)
    record = {k: (v.strip() if isinstance(v, str) else v) for k, v in body.items() if k in CP_FIELDS and v not in (None, "")}
    return proxy(lambda api: api.post("/api/charging_points", record), f"{record['cp_id']}: dado de alta")


@bp.post("/charging_points/<cp_id>/remove")
@_needs_json
def remove_cp(cp_id: str):
    """Deregister a CP (API_Central refuses while it is supplying)."""
    return proxy(lambda api: api.delete(_cp_path(cp_id)), f"{cp_id}: dado de baja")


def _number(value) -> Optional[float]:
    """A number from JSON or a form field; None for empty; ValueError otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(value)
    return float(value)


@bp.post("/weather/thresholds")
def set_thresholds():
    """Change the weather thresholds (min required, max optional; min below max)."""
    body = _json_body()
    error, min_c, max_c = None, None, None
    try:
        min_c = _number((body or {}).get("min_c"))
        max_c = _number((body or {}).get("max_c"))
    except (TypeError, ValueError):
        error = "Los umbrales deben ser números (°C)"
    if body is None:
        error = "Se esperaba un cuerpo JSON (objeto)"
    elif error is None and min_c is None:
        error = "Falta la temperatura mínima"
    elif error is None and max_c is not None and min_c >= max_c:
        error = "La mínima debe ser menor que la máxima"
    if error:
        return fail("BAD_THRESHOLDS", error, 400)
    limits = {"min_c": min_c, "max_c": max_c}
    text = f"Umbrales del clima: mínima {min_c:g} °C" + (f", máxima {max_c:g} °C" if max_c is not None else "")
    return proxy(lambda api: api.put("/api/weather/thresholds", limits), text, missing=THRESHOLDS_MISSING_TEXT)
