"""A small synchronous client for a running node's control API (used by CLI commands)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import click

DEFAULT_URL = "http://127.0.0.1:4566"

url_option = click.option(
    "--url",
    envvar="STACKYARD_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="Control API of the running node (or set STACKYARD_URL).",
)


class ControlClient:
    """JSON calls to the control API; every failure becomes a :class:`click.ClickException`
    (the node's ``{"error": {"message"}}``, or how to start a node when none answers)."""

    def __init__(self, base_url: str, timeout: float = 10.0, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        # a node listening beyond loopback asks for its token (printed by `stackyard up`)
        self.token = token if token is not None else os.environ.get("STACKYARD_TOKEN", "")

    def _open(
        self,
        path: str,
        params: dict[str, str],
        timeout: float | None,
        method: str = "GET",
        body: object = None,
    ) -> Any:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v})
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {} if data is None else {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            return urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            raise click.ClickException(_error_text(exc)) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise click.ClickException(
                f"no Stackyard node answers at {self.base_url} ({reason}).\n"
                "Start one with `stackyard up PATH`, or point --url / STACKYARD_URL at it."
            ) from exc

    def call_json(self, method: str, path: str, body: object = None, **params: str) -> Any:
        """``method`` on ``path`` (``body``, if any, sent as JSON); the JSON answer."""
        with self._open(path, params, self.timeout, method, body) as response:
            return json.load(response)

    def get_json(self, path: str, **params: str) -> Any:
        return self.call_json("GET", path, **params)

    def post_json(self, path: str, body: object = None, **params: str) -> Any:
        return self.call_json("POST", path, body, **params)

    def delete_json(self, path: str, **params: str) -> Any:
        return self.call_json("DELETE", path, **params)

    def stream_ndjson(self, path: str, **params: str) -> Iterator[Any]:
        with self._open(path, params, None) as response:
            for line in response:
                if line.strip():
                    yield json.loads(line)


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read())
        return f"{exc.code}: {body['error']['message']}"
    except (ValueError, KeyError, TypeError):
        return f"{exc.code}: {exc.reason}"
