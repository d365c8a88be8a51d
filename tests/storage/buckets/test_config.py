"""``buckets:`` in stackyard.yml."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stackyard.config.models import StackConfig


def test_declared_buckets() -> None:
    config = StackConfig.model_validate(
        {"name": "s", "buckets": {"photos": {}, "eu.data": {"region": "eu-west-1"}, "x-y": None}}
    )
    assert sorted(config.buckets) == ["eu.data", "photos", "x-y"]
    assert config.buckets["eu.data"].region == "eu-west-1"
    assert config.buckets["x-y"].region is None


@pytest.mark.parametrize("name", ["UPPER", "a", "under_score", "-start", "end-"])
def test_bucket_names_follow_s3_rules(name: str) -> None:
    with pytest.raises(ValidationError, match="bucket name"):
        StackConfig.model_validate({"name": "s", "buckets": {name: {}}})


def test_unknown_bucket_settings_are_refused() -> None:
    with pytest.raises(ValidationError):
        StackConfig.model_validate({"name": "s", "buckets": {"photos": {"public": True}}})
