"""The Front's only way to API_Central: JSON over HTTP with timeouts, errors turned into exceptions.

``CentralUnavailable`` means nobody answered (connection refused, timeout, not JSON): the Front shows
"Imposible conectar con la CENTRAL". ``ApiError`` means API_Central answered with its JSON error
``{"error": CODE, "message": text}`` (or a bare 4xx/5xx); the Front shows the message to the operator.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Optional

import requests

logger = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 2.0


class CentralUnavailable(Exception):
    """API_Central cannot be reached or did not answer in time."""


class ApiError(Exception):
    """API_Central answered with an HTTP error."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class CentralApi:
    """A small JSON client of API_Central (one requests.Session; urllib3's pool is thread-safe)."""

    def __init__(self, base_url: str, timeout_s: float = 5.0,
                 session_factory: Callable[[], Any] = requests.Session, ca_file: Optional[str] = None):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.ca_file = ca_file  # HTTPS API_Central: verify against the project CA (never verify=False)
        self._session_factory = session_factory
        self._session = None

    def call(self, method: str, path: str, *, params: Optional[dict] = None, body: Any = None,
             timeout_s: Optional[float] = None) -> Any:
        """One request; returns the decoded JSON or raises CentralUnavailable / ApiError."""
        if self._session is None:
            self._session = self._session_factory()
            if self.ca_file:
                self._session.verify = self.ca_file
        read_timeout = self.timeout_s if timeout_s is None else timeout_s
        try:
            resp = self._session.request(method, self.base_url + path, params=params, json=body,
                                         timeout=(CONNECT_TIMEOUT_S, read_timeout))
        except requests.RequestException as exc:
            raise CentralUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return _decode(resp)

    def get(self, path: str, **kwargs) -> Any:
        """GET path."""
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs) -> Any:
        """POST path with a JSON body."""
        return self.call("POST", path, body=body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs) -> Any:
        """PUT path with a JSON body."""
        return self.call("PUT", path, body=body, **kwargs)

    def delete(self, path: str, **kwargs) -> Any:
        """DELETE path."""
        return self.call("DELETE", path, **kwargs)

    def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            self._session.close()
            self._session = None


def _decode(resp) -> Any:
    """JSON of a response, or the API error it carries."""
    try:
        data = resp.json()
    except ValueError:
        data = None
    if resp.status_code >= 400:
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            raise ApiError(resp.status_code, data["error"], str(data.get("message") or data["error"]))
        raise ApiError(resp.status_code, f"HTTP_{resp.status_code}", f"API_Central respondió {resp.status_code}")
    if data is None:
        raise CentralUnavailable(f"API_Central answered {resp.status_code} without JSON")
    return data
