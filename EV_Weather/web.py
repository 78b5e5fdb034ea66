"""The weather office's small page and API: see the watched cities, add or remove one at run time.

GET /                      the page (templates/office.html with the shared /shared/base.css and
                           /shared/states.css, like the other pages; refreshes every 4 s; forms to add / remove)
GET /api/locations         watched places with their last reading
POST /api/locations        {"city", "country"?} → 201 (or 200 when already watched)
DELETE /api/locations/<city>?country=CC → 200, 404 when not watched
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from flask import Blueprint, Flask, current_app, jsonify, redirect, render_template, request, url_for

from common.web import cross_site_post, shared_blueprint
from EV_Weather.office import Location, WeatherOffice

bp = Blueprint("weather_office", __name__)


def _office() -> WeatherOffice:
    return current_app.config["OFFICE"]


def _error(code: str, message: str, status: int):
    return jsonify({"error": code, "message": message}), status


def _rows() -> list[dict]:
    rows = _office().status()
    for r in rows:
        r["when"] = datetime.fromtimestamp(r["observed_at"]).strftime("%H:%M:%S") if r["observed_at"] else "—"
    return rows


@bp.get("/")
def page():
    """The operator's page."""
    office = _office()
    return render_template("office.html", rows=_rows(), provider=office.provider.name, rounds=office.rounds,
                                  thresholds=office.thresholds.text(), notice=request.args.get("notice"))


@bp.post("/add")
def add_form():
    """Form: watch a city."""
    return _form(lambda text: _office().add_city(text))


@bp.post("/remove")
def remove_form():
    """Form: stop watching a city."""
    return _form(lambda text: _office().remove_city(text))


def _form(action) -> object:
    if cross_site_post():
        return jsonify({"error": "CROSS_SITE", "message": "form posts are accepted only from this page"}), 403
    try:
        notice = action(request.form.get("place", ""))
    except ValueError as exc:
        notice = f"No válido: {exc}"
    return redirect(url_for("weather_office.page", notice=notice))


@bp.get("/api/locations")
def list_locations():
    """Watched places with their last reading."""
    return jsonify(_office().status())


def _location(body) -> tuple[Optional[Location], Optional[str]]:
    if not isinstance(body, dict) or not isinstance(body.get("city"), str):
        return None, 'body must be {"city": text, "country": "CC"}'
    try:
        return Location.parse(f"{body['city']},{body.get('country') or 'ES'}"), None
    except ValueError as exc:
        return None, str(exc)


@bp.post("/api/locations")
def add_location():
    """Watch a place: 201 when new, 200 when it was already watched."""
    location, problem = _location(request.get_json(silent=True))
    if problem:
        return _error("BAD_LOCATION", problem, 400)
    added = _office().book.add(location)
    return jsonify({"city": location.city, "country": location.country, "added": added}), 201 if added else 200


@bp.delete("/api/locations/<city>")
def remove_location(city: str):
    """Stop watching a place (?country=CC, default ES)."""
    location, problem = _location({"city": city, "country": request.args.get("country")})
    if problem:
        return _error("BAD_LOCATION", problem, 400)
    if not _office().book.remove(location):
        return _error("NOT_WATCHED", f"{location.label} is not watched", 404)
    return jsonify({"city": location.city, "country": location.country, "removed": True})


def create_app(office: WeatherOffice, overrides: Optional[dict] = None) -> Flask:
    """The weather office's web app factory."""
    app = Flask(__name__)
    app.config.update(OFFICE=office)
    app.config.update(overrides or {})
    app.register_blueprint(shared_blueprint())
    app.register_blueprint(bp)
    return app
