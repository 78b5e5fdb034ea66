"""EV_Front: the operator's web dashboard, a separate process that reads API_Central and survives its restarts.

Usage: python EV_Central_Server/EV_Front.py [--api http://127.0.0.1:8000] [--port 5000] [--host 0.0.0.0]
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.config import env, load_env  # noqa: E402
from common.logs import setup_logging  # noqa: E402
from EV_Central_Server.front import create_app, socketio, start_feed  # noqa: E402

logger = logging.getLogger("EV_Front")


def parse_args(argv):
    """Flags only (SPEC §2), each with an environment default."""
    ap = argparse.ArgumentParser(prog="EV_Front", description=__doc__.splitlines()[0])
    ap.add_argument("--api", default=env("EVC_FRONT_API", "http://127.0.0.1:8000"),
                    help="API_Central base URL (env EVC_FRONT_API)")
    ap.add_argument("--api-ca", default=env("EVC_FRONT_API_CA"),
                    help="CA certificate file when API_Central is HTTPS (env EVC_FRONT_API_CA)")
    ap.add_argument("--port", type=int, default=int(env("EVC_FRONT_PORT", "5000")), help="HTTP port (env EVC_FRONT_PORT)")
    ap.add_argument("--host", default=env("EVC_FRONT_HOST", "0.0.0.0"), help="listen address (env EVC_FRONT_HOST)")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    """Build the app, start the live feed and serve until killed."""
    load_env()
    args = parse_args(argv)
    os.environ.setdefault("EVC_COMPONENT", "EV_Front")
    setup_logging("EV_Front")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # its "development server" banner on every start
    app = create_app({"CENTRAL_API_URL": args.api, "CENTRAL_API_CA": args.api_ca})
    start_feed(app)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    print(f"Front listo en http://{shown}:{args.port}/ (API_Central {args.api})", flush=True)
    socketio.run(app, host=args.host, port=args.port, allow_unsafe_werkzeug=True, use_reloader=False, log_output=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
