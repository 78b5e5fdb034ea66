"""A local stand-in for OpenWeather's current-weather endpoint (GET /data/2.5/weather), for tests and offline demos.

It answers with the real API's JSON shapes, including its errors:
  200 {"coord", "weather", "main": {"temp", ...}, "name", "sys": {"country"}, "cod": 200, ...}
  401 {"cod": 401, "message": "Invalid API key. Please see https://openweathermap.org/faq#error401 for more info."}
  404 {"cod": "404", "message": "city not found"}
  400 {"cod": "400", "message": "Nothing to geocode"}   (no q)
  500 {"cod": "500", "message": "Internal error"}
Temperatures honour units=metric (°C; default Kelvin like the real API, imperial °F).

Controlled from a test in the same process (``stub.set_temperature("Bilbao", "ES", -2)``,
``stub.set_error("Bilbao", "ES", 500)``, ``stub.stop()`` / ``stub.start()`` on the same port), or over
HTTP when run as a program: ``python tests/support/openweather_stub.py --port 8090 --key test-key`` and
``curl -X PUT localhost:8090/_stub/Bilbao,ES -d '{"temperature": -2}'`` (or ``{"error": 404}``, or
``{"reset": true}``). Unknown cities answer 404 unless a default temperature is set.
"""
from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import parse_qs, unquote, urlparse

PATH = "/data/2.5/weather"
ERRORS = {
    400: {"cod": "400", "message": "Nothing to geocode"},
    401: {"cod": 401, "message": "Invalid API key. Please see https://openweathermap.org/faq#error401 for more info."},
    404: {"cod": "404", "message": "city not found"},
    429: {"cod": 429, "message": "Your account is temporary blocked due to exceeding of requests limitation of "
                                 "your subscription type. Please choose the proper subscription "
                                 "https://openweathermap.org/price"},
    500: {"cod": "500", "message": "Internal error"},
}


def _key(city: str, country: str) -> tuple[str, str]:
    return " ".join(city.split()).casefold(), country.strip().upper()


def current_weather(city: str, country: str, celsius: float, units: str) -> dict:
    """A 200 body shaped like OpenWeather's current weather."""
    value = {"metric": celsius, "imperial": celsius * 9 / 5 + 32}.get(units, celsius + 273.15)
    value = round(value, 2)
    now = int(time.time())
    return {
        "coord": {"lon": -2.9253, "lat": 43.2627},
        "weather": [{"id": 800, "main": "Clear", "description": "clear sky", "icon": "01d"}],
        "base": "stations",
        "main": {"temp": value, "feels_like": value, "temp_min": value, "temp_max": value,
                 "pressure": 1015, "humidity": 70},
        "visibility": 10000, "wind": {"speed": 3.6, "deg": 200}, "clouds": {"all": 0}, "dt": now,
        "sys": {"type": 2, "id": 2000000, "country": country, "sunrise": now - 20000, "sunset": now + 20000},
        "timezone": 3600, "id": 3128026, "name": city, "cod": 200,
    }


class OpenWeatherStub:
    """The stub server: per-city temperatures and errors, a set of valid keys, request counts."""

    def __init__(self, port: int = 0, keys: tuple[str, ...] = ("test-key",), host: str = "127.0.0.1",
                 default_temperature: Optional[float] = None):
        self.host, self.port, self.keys = host, port, set(keys)
        self.default_temperature = default_temperature
        self._lock = threading.Lock()
        self.temperatures: dict[tuple[str, str], float] = {}
        self.errors: dict[tuple[str, str], int] = {}
        self.requests: dict[tuple[str, str], int] = {}
        self._server: Optional[ThreadingHTTPServer] = None

    @property
    def url(self) -> str:
        """The current-weather endpoint to give EV_W (--openweather-url)."""
        return f"http://{self.host}:{self.port}{PATH}"

    # ---- control ----
    def set_temperature(self, city: str, country: str, celsius: float) -> None:
        """Answer 200 with this temperature from now on (clears an error)."""
        with self._lock:
            self.temperatures[_key(city, country)] = celsius
            self.errors.pop(_key(city, country), None)

    def set_error(self, city: str, country: str, status: Optional[int]) -> None:
        """Answer this error (401, 404, 429 or 500) for the city; None stops the error."""
        with self._lock:
            if status is None:
                self.errors.pop(_key(city, country), None)
            else:
                self.errors[_key(city, country)] = status

    def count(self, city: str, country: str) -> int:
        """Requests seen for a city."""
        with self._lock:
            return self.requests.get(_key(city, country), 0)

    # ---- server ----
    def start(self) -> "OpenWeatherStub":
        """Listen (again, on the same port after a stop)."""
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                stub._get(self)

            def do_PUT(self):  # noqa: N802
                stub._control(self)

            def log_message(self, *args):  # keep test output clean
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="openweather-stub", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening (EV_W then sees refused connections)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _answer(self, handler: BaseHTTPRequestHandler, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _get(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlparse(handler.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path != PATH:
            return self._answer(handler, 404, {"cod": "404", "message": "Internal error"})
        if query.get("appid") not in self.keys:
            return self._answer(handler, 401, ERRORS[401])
        if not query.get("q"):
            return self._answer(handler, 400, ERRORS[400])
        city, _, country = query["q"].rpartition(",") if "," in query["q"] else (query["q"], "", "")
        key = _key(city, country)
        with self._lock:
            self.requests[key] = self.requests.get(key, 0) + 1
            error, celsius = self.errors.get(key), self.temperatures.get(key, self.default_temperature)
        if error is not None:
            return self._answer(handler, error, ERRORS.get(error, {"cod": str(error), "message": "error"}))
        if celsius is None:
            return self._answer(handler, 404, ERRORS[404])
        self._answer(handler, 200, current_weather(city, country.upper(), celsius, query.get("units", "standard")))

    def _control(self, handler: BaseHTTPRequestHandler) -> None:
        """PUT /_stub/<City,CC> {"temperature": n} | {"error": status|null} | {"reset": true}."""
        path = unquote(urlparse(handler.path).path)
        try:
            body = json.loads(handler.rfile.read(int(handler.headers.get("Content-Length") or 0)) or b"{}")
            assert path.startswith("/_stub/") and isinstance(body, dict)
        except (ValueError, AssertionError):
            return self._answer(handler, 400, {"error": "BAD_CONTROL", "message": "PUT /_stub/City,CC with a JSON object"})
        city, _, country = path[len("/_stub/"):].rpartition(",")
        if "temperature" in body:
            self.set_temperature(city, country, float(body["temperature"]))
        if "error" in body:
            self.set_error(city, country, body["error"])
        if body.get("reset"):
            with self._lock:
                self.temperatures.pop(_key(city, country), None)
                self.errors.pop(_key(city, country), None)
        self._answer(handler, 200, {"city": city, "country": country, "result": "ok"})


def main(argv=None) -> int:
    """Run the stub as a program (offline demos)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--key", action="append", default=None, help="a valid appid (repeatable; default test-key)")
    ap.add_argument("--default-temperature", type=float, default=None, help="°C for cities not set")
    args = ap.parse_args(argv)
    stub = OpenWeatherStub(args.port, tuple(args.key or ["test-key"]), args.host, args.default_temperature).start()
    print(f"OpenWeather stub on {stub.url}", flush=True)
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
