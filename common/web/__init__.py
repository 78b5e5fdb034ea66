"""What every web page of the project shares: the vendored Socket.IO client, the state colours and base styles.

``shared_blueprint()`` serves them under ``/shared/`` (no CDN: pages work on machines without internet).
The Socket.IO client is socket.io-client 4.8.4 (MIT), copied from its npm package's dist/ folder.
``/shared/states.css`` is generated from ``common.domain.STATE_COLOURS``, so every screen colours a
state the same way (SPEC §3): use ``class="state-<STATE>"``. ``/shared/base.css`` holds the base styles
of the Engine panel and the driver web app (layout, cards, buttons, meters, tickets, messages, login);
they link it after ``states.css`` and before their own stylesheet.
"""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response

from common.domain import STATE_COLOURS

STATIC = Path(__file__).resolve().parent / "static"
COLOUR_HEX = {"grey": "#9e9e9e", "green": "#2e7d32", "orange": "#ef6c00", "red": "#c62828"}


def states_css() -> str:
    """CSS classes state-<STATE> with the colour of each CP state."""
    rules = [f".state-{state.value} {{ background: {COLOUR_HEX[colour]}; color: #fff; }}"
             for state, colour in STATE_COLOURS.items()]
    return "\n".join(rules) + "\n"


def shared_blueprint() -> Blueprint:
    """A blueprint serving /shared/socket.io.min.js, /shared/base.css and /shared/states.css."""
    bp = Blueprint("shared", __name__, static_folder=str(STATIC), static_url_path="/shared")
    bp.add_url_rule("/shared/states.css", "states_css",
                    lambda: Response(states_css(), mimetype="text/css", headers={"Cache-Control": "max-age=60"}))
    return bp
