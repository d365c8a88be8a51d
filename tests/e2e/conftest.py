"""A real node running the example shop, shared by the e2e tests of a module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stackyard.testing import NodeProcess

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    data_dir = tmp_path_factory.mktemp("shop") / "data"
    with NodeProcess(SHOP, data_dir=data_dir) as node:
        node.wait_ready(90)
        yield node
