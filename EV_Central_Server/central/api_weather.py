"""API_Central, weather area: what EV_W posts (with its API key) and what the Front reads and edits.

Contract: docs/CONTRACT-weather.md; rules: central/weather.py. Writes from EV_W carry ``X-API-Key``;
CENTRAL's key comes from EVC_WEATHER_API_KEY or the file named by EVC_WEATHER_API_KEY_FILE (or the app
config WEATHER_API_KEY in tests). A missing or wrong key is a 401 and a SECURITY audit record; the key
is never logged or echoed.
"""
from __future__ import annotations

import hmac
import logging
from functools import wraps
from typing import Optional

from flask import Blueprint, current_app, jsonify, request

from common.config import secret_from
from EV_Central_Server.central.api import error
from EV_Central_Server.central.weather import (WeatherDesk, validate_alert, validate_message,
                                               validate_observations, validate_thresholds)

logger = logging.getLogger(__name__)
bp = Blueprint("weather", __name__, url_prefix="/api")
KEY_HEADER = "X-API-Key"
ACTOR = "EV_W"


@bp.record_once
def _attach_desk(state) -> None:
    """One WeatherDesk per app, loaded from the database (a failure is logged; the desk starts empty)."""
    config = state.app.config
    desk = config.setdefault("WEATHER", WeatherDesk(config["SERVICE"], config["REPO"]))
    try:
        desk.load()
    except Exception:
        logger.exception("could not load weather state; starting without it")


def _desk() -> WeatherDesk:
    return current_app.config["WEATHER"]


def _expected_key() -> Optional[str]:
    return current_app.config.get("WEATHER_API_KEY") or secret_from("EVC_WEATHER_API_KEY")


def require_key(view):
    """Refuse (401 BAD_API_KEY, audited) a request without the weather office's API key."""
    @wraps(view)
    def guarded(*args, **kwargs):
        expected, given = _expected_key(), request.headers.get(KEY_HEADER, "")
        if expected and given and hmac.compare_digest(given.encode(), expected.encode()):
            return view(*args, **kwargs)
        why = "no API key configured in CENTRAL" if not expected else "missing API key" if not given else "wrong API key"
        logger.warning("refused %s %s from %s: %s", request.method, request.path, request.remote_addr, why)
        _desk().refused(f"weather_key_refused {request.method} {request.path}", request.remote_addr, why)
        return error("BAD_API_KEY", "a valid X-API-Key is required", 401)
    return guarded


def _body():
    return request.get_json(silent=True)


@bp.get("/weather")
def weather_overview():
    """Thresholds, the temperature and alert of every observed place, and the newest alerts."""
    return jsonify(_desk().overview())


@bp.get("/weather/thresholds")
def get_thresholds():
    """The temperature range (EV_W reads it before every round)."""
    return jsonify(_desk().thresholds())


@bp.put("/weather/thresholds")
def put_thresholds():
    """Change the temperature range (operator, from the Front); applied on EV_W's next round."""
    thresholds, problem = validate_thresholds(_body())
    if problem:
        return error("BAD_THRESHOLDS", problem, 400)
    return jsonify(_desk().set_thresholds(thresholds, actor="api"))


@bp.post("/weather/observations")
@require_key
def post_observations():
    """EV_W's temperatures of one round: shown on every CP of each place, kept in weather_history."""
    observations, problem = validate_observations(_body())
    if problem:
        return error("BAD_OBSERVATIONS", problem, 400)
    return jsonify({"stored": _desk().observe(observations)})


@bp.post("/weather/alerts")
@require_key
def post_alert():
    """ALERT: the place's CPs go PARADO (WEATHER) once idle; CLEAR removes only WEATHER."""
    alert, problem = validate_alert(_body())
    if problem:
        return error("BAD_ALERT", problem, 400)
    changed = _desk().alert(alert["city"], alert["country"], alert["kind"], alert["temperature"], actor=ACTOR)
    return jsonify({"kind": alert["kind"], "charging_points": changed})


@bp.post("/messages")
@require_key
def post_message():
    """A message from the weather office, shown among the Front's application messages."""
    msg, problem = validate_message(_body())
    if problem:
        return error("BAD_MESSAGE", problem, 400)
    _desk().message(msg)
    return jsonify({"result": "stored"}), 201
