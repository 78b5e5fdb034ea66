"""EV_W: the weather office — polls the temperature of every CP location and asks CENTRAL to stop CPs in freezing weather.

Usage: python EV_Weather/EV_W.py [--api URL] [--provider openweather|scenario] [--scenario FILE] [--poll-s 4] [--sync-s 60]
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.config import ROOT, env, load_env, secret_from  # noqa: E402
from common.logs import setup_logging  # noqa: E402
from common.web import serve  # noqa: E402
from EV_Weather.central_client import CentralClient  # noqa: E402
from EV_Weather.console import WeatherConsole  # noqa: E402
from EV_Weather.office import WeatherOffice  # noqa: E402
from EV_Weather.providers import (DEFAULT_KEY_FILE, OPENWEATHER_URL, OpenWeatherProvider,  # noqa: E402
                                  ScenarioProvider, openweather_key)
from EV_Weather.web import create_app  # noqa: E402

logger = logging.getLogger("EV_W")
CENTRAL_KEY_ENV = "EVC_WEATHER_API_KEY"


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def parse_args(argv):
    """Flags only (SPEC §2), each with an environment default."""
    ap = argparse.ArgumentParser(prog="EV_W", description=__doc__.splitlines()[0])
    ap.add_argument("--api", default=env("EVC_API_URL", "http://127.0.0.1:8000"), help="API_Central base URL")
    ap.add_argument("--provider", choices=("openweather", "scenario"), default=env("EVC_WEATHER_PROVIDER", "openweather"),
                    help="openweather falls back to the scenario (with a warning) when there is no key")
    ap.add_argument("--scenario", type=Path, default=Path(env("EVC_WEATHER_SCENARIO", str(ROOT / "demo/weather/scenario.json"))))
    ap.add_argument("--openweather-url", default=env("EVC_OPENWEATHER_URL", OPENWEATHER_URL),
                    help="current-weather endpoint (tests point it at tests/support/openweather_stub.py)")
    ap.add_argument("--key-file", type=Path, default=Path(env("EVC_OPENWEATHER_KEY_PATH", str(DEFAULT_KEY_FILE))),
                    help="git-ignored file with the OpenWeather key (after EVC_OPENWEATHER_API_KEY and .env)")
    ap.add_argument("--poll-s", type=_positive, default=float(env("EVC_WEATHER_POLL_S", "4")))
    ap.add_argument("--sync-s", type=_positive, default=float(env("EVC_WEATHER_SYNC_S", "60")))
    ap.add_argument("--web-port", type=int, default=int(env("EVC_WEATHER_WEB_PORT", "5003")), help="0: no page")
    ap.add_argument("--web-host", default=env("EVC_WEATHER_WEB_HOST", "127.0.0.1"))
    ap.add_argument("--ca", default=env("EVC_CA_FILE"), help="CA file to verify an https API_Central")
    ap.add_argument("--no-console", action="store_true", help="do not read commands from stdin")
    return ap.parse_args(argv)


def build_provider(args, say):
    """OpenWeather when asked and a key exists; otherwise the scenario (a missing key is a clear warning)."""
    if args.provider == "openweather":
        key = openweather_key(args.key_file)
        if key:
            return OpenWeatherProvider(key, args.openweather_url)
        say("AVISO: no hay clave de OpenWeather (EVC_OPENWEATHER_API_KEY, .env o "
            f"{args.key_file}); uso el escenario {args.scenario}")
    return ScenarioProvider.from_file(args.scenario)


def every(seconds_fn, action, name: str) -> threading.Thread:
    """Run an action, then again after seconds_fn(result) seconds, in a daemon thread; failures are logged."""
    def loop():
        while True:
            started, result = time.monotonic(), None
            try:
                result = action()
            except Exception:
                logger.exception("%s failed", name)
            time.sleep(max(0.0, seconds_fn(result) - (time.monotonic() - started)))
    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread


def main(argv=None) -> int:
    """Build the provider, the API_Central client and the office; poll, sync and serve until killed."""
    load_env()
    args = parse_args(argv)
    os.environ.setdefault("EVC_COMPONENT", "EV_W")
    setup_logging("EV_W")
    logging.getLogger("urllib3").setLevel(logging.WARNING)  # its debug lines would show the appid in URLs

    def say(text: str) -> None:
        print(text, flush=True)

    try:
        provider = build_provider(args, say)
    except ValueError as exc:
        say(f"ERROR: {exc}")
        return 2
    central_key = secret_from(CENTRAL_KEY_ENV)
    if not central_key:
        say(f"AVISO: sin {CENTRAL_KEY_ENV} (o {CENTRAL_KEY_ENV}_FILE): la CENTRAL rechazará alertas y temperaturas")
    verify = args.ca or True
    office = WeatherOffice(provider, CentralClient(args.api, central_key, verify=verify), out=say)
    synced = office.sync()
    every(lambda ok: args.sync_s if ok else min(args.sync_s, 5.0), office.sync, "wx-sync")
    every(lambda _: args.poll_s, office.poll_round, "wx-poll")
    page = ""
    if args.web_port:
        try:
            server = serve(create_app(office), args.web_host, args.web_port, name="wx-web")
        except OSError:  # werkzeug has said why
            return 1
        page = f", página http://{args.web_host}:{server.server_port}/"
    say(f"EV_W listo: proveedor {provider.name}, {len(office.book.current())} ubicaciones"
        f"{'' if synced else ' (CENTRAL aún no responde)'}, cada {args.poll_s:g} s, sincroniza cada {args.sync_s:g} s"
        f"{page}")
    if not args.no_console and sys.stdin is not None and not sys.stdin.closed:
        if WeatherConsole(office).run():
            office.close()
            return 0
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
