"""Shared fixtures: the repository root, and the OpenAPI app and stack the import and export
tests share; and a check that no compiled module is older than its source."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_sessionstart(session: pytest.Session) -> None:
    """Python imports a module's extension (``scripts/compile.py``) in place of its source:
    after an edit, the tests would run the code as it was. Refuse to start then."""
    stale = [
        str(extension.relative_to(ROOT))
        for extension in (ROOT / "src").rglob("*.so")
        if (source := extension.with_name(extension.name.split(".")[0] + ".py")).exists()
        and source.stat().st_mtime > extension.stat().st_mtime
    ]
    if stale:
        pytest.exit(
            f"compiled modules older than their sources: {', '.join(stale)}; "
            "run `make compile` (or `python scripts/compile.py --clean` to run them interpreted)",
            returncode=4,
        )


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def openapi_app() -> Path:
    """``tests/e2e/apps/openapi``: a stack importing ``openapi.yaml``, a document with every
    ``x-amazon-apigateway-*`` extension Stackyard reads."""
    return ROOT / "tests" / "e2e" / "apps" / "openapi"


@pytest.fixture(scope="session")
def openapi_stack() -> str:
    """A stack file importing ``openapi.yaml`` (replace the name for another document), with
    the service (``items``) and the functions (``hello``, ``authorize``) the test documents'
    integrations name."""
    return """\
name: s
services:
  items: {command: "true"}
functions:
  hello: {handler: handler.hello}
  authorize: {handler: handler.authorize}
api:
  openapi: openapi.yaml
"""
