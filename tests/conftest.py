"""Shared fixtures: the repository root, and the OpenAPI app and stack the import and export
tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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
