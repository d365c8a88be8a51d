"""`stackyard keys` against a real node: create, use through the gateway, list, restart, revoke."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from stackyard.testing import NodeProcess

APP = Path(__file__).resolve().parent / "apps" / "api_keys"


def keys(node: NodeProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackyard", "keys", *args, "--url", node.control_url],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "COLUMNS": "200"},
    )


def get(url: str, key: str | None = None) -> tuple[int, object]:
    request = urllib.request.Request(url, headers={"x-api-key": key} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_keys_cli_against_a_running_node(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with NodeProcess(APP, data_dir=data_dir) as node:
        node.wait_ready(60)
        items = node.gateway_url + "/items"
        status, body = get(items)
        assert status == 403 and body == {
            "error": {"code": "Forbidden", "message": "Forbidden: this route needs an API key "
                      "(x-api-key)"}
        }  # fmt: skip

        created = keys(node, "create", "alice", "--plan", "basic")
        assert created.returncode == 0, created.stderr
        values = re.findall(r"^([A-Za-z0-9_-]{40})$", created.stdout, re.MULTILINE)
        assert len(values) == 1, created.stdout
        key = values[0]
        assert f"curl -H 'x-api-key: {key}' {node.gateway_url}/" in created.stdout

        assert get(items, key) == (200, {"items": [1, 2, 3]})
        status, identity = get(node.gateway_url + "/whoami", key)  # a REST (1.0) function event
        assert status == 200 and isinstance(identity, dict)
        assert (identity["apiKey"], identity["apiKeyId"]) == (key, "alice")

        listed = keys(node, "list")
        assert listed.returncode == 0, listed.stderr
        assert "alice" in listed.stdout and "basic" in listed.stdout and "active" in listed.stdout
        assert key[:6] in listed.stdout and key not in listed.stdout

        duplicate = keys(node, "create", "alice", "--plan", "basic")
        assert duplicate.returncode == 1 and "409" in duplicate.stderr
        unknown_plan = keys(node, "create", "bob", "--plan", "platinum")
        assert unknown_plan.returncode == 1
        assert "no usage plan named 'platinum'" in unknown_plan.stderr
        assert node.stop() == 0, node.output()

    key_file = data_dir / "api-keys.db"
    assert key_file.exists() and key.encode() not in key_file.read_bytes()

    with NodeProcess(APP, data_dir=data_dir) as node:
        node.wait_ready(60)
        items = node.gateway_url + "/items"
        assert get(items, key)[0] == 200  # the key survived the restart
        usage = keys(node, "usage", "alice")
        assert usage.returncode == 0, usage.stderr
        assert "3 of 1000 requests this month" in usage.stdout  # counts survived too

        revoked = keys(node, "revoke", "alice")
        assert revoked.returncode == 0 and "revoked key alice" in revoked.stdout
        status, body = get(items, key)
        assert status == 403
        listed = keys(node, "list")
        assert "revoked" in listed.stdout

        missing = keys(node, "revoke", "nobody")
        assert missing.returncode == 1 and "no key named 'nobody'" in missing.stderr

    unreachable = subprocess.run(
        [sys.executable, "-m", "stackyard", "keys", "list", "--url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert unreachable.returncode == 1 and "no Stackyard node answers" in unreachable.stderr
