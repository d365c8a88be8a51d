"""Helpers of the managed caches and databases tests."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

APP = Path(__file__).with_name("app.py")


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir the ``postgres`` user can reach when the tests run as root (pytest's own
    temporary folders are private to their owner, and PostgreSQL refuses to run as root)."""
    if os.geteuid() != 0:
        yield tmp_path / "data"
        return
    base = Path("/tmp") / f"stackyard-managed-{tmp_path.name}"
    base.mkdir(mode=0o711, exist_ok=True)
    base.chmod(0o711)
    yield base / "data"
    subprocess.run(["rm", "-rf", str(base)], check=False)


def servers_of(folder: Path) -> list[str]:
    """Command lines of running redis-server/postgres processes that mention ``folder`` (or
    listen on a port saved in it)."""
    ports = [p.read_text().strip() for p in folder.glob("*/*/port")]
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        line = " ".join(a.decode(errors="replace") for a in args if a)
        if ("redis-server" in line or "postgres" in line) and (
            str(folder) in line or any(f":{p}" in line or f" {p} " in f"{line} " for p in ports)
        ):
            found.append(line)
    return found


def call(port: int, method: str = "GET", path: str = "/") -> Any:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def write_stack(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "stackyard.yml").write_text(text)
    return root
