"""The stack loader: valid files, every error located by line and field, variables, fuzzing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from stackyard.config import ConfigError, load_stack, parse_duration, parse_stack

GOOD = """\
name: shop
services:
  web:
    command: python app.py --port ${env:WEB_PORT, 9000}
    replicas: 2
    env: {MODE: "${env:MODE}", DEBUG: true, LEVEL: 3}
    health:
      http: /health
      interval: 500ms
      deregister_after: 1m30s
  worker:
    command: ./run.sh
    health: {ttl: 10s}
api:
  routes:
    - path: /web/{proxy+}
      methods: get
      service: web
      strip_prefix: true
    - path: /items/{id}
      service: web
"""


def test_valid_stack_with_variables(tmp_path: Path) -> None:
    (tmp_path / "stackyard.yml").write_text(GOOD)
    loaded = load_stack(tmp_path, {"MODE": "prod"})
    web = loaded.config.services["web"]
    assert web.command == "python app.py --port 9000"
    assert web.env == {"MODE": "prod", "DEBUG": "true", "LEVEL": "3"}
    assert web.health.kind == "http" and web.health.interval == 0.5
    assert web.health.deregister_after == 90.0
    assert loaded.config.services["worker"].health.kind == "ttl"
    route = loaded.config.api.routes[0]
    assert route.methods == ["GET"] and route.prefix_to_strip == "/web"
    assert loaded.config.api.routes[1].methods == ["ANY"]
    assert loaded.file == (tmp_path / "stackyard.yml").resolve()


def test_tracing_samples_like_xray_by_default(tmp_path: Path) -> None:
    """Every trace up to 100 new ones a second, then 5 % of the rest; a stack can trace all."""
    tracing = parse_stack("name: s\n", Path("s.yml"), {}).tracing
    assert (tracing.reservoir, tracing.sample_ratio) == (100, 0.05)
    text = "name: s\ntracing: {sample_ratio: 1, reservoir: 0}\n"
    tracing = parse_stack(text, Path("s.yml"), {}).tracing
    assert (tracing.reservoir, tracing.sample_ratio) == (0, 1.0)


def test_every_error_is_reported_with_file_line_and_field() -> None:
    text = """\
name: Shop
services:
  web:
    comand: x
    replicas: two
    health: {http: health, tcp: true}
  ok:
    command: ${env:NOT_SET}
api:
  routes:
    - path: /a/{rest+}/b
      service: web
    - path: /x
      service: nowhere
"""
    with pytest.raises(ConfigError) as info:
        parse_stack(text, Path("stack.yml"), {})
    lines = [str(p) for p in info.value.problems]
    assert "stack.yml:1: name: String should match pattern '^[a-z][a-z0-9-]{0,62}$'" in lines
    assert "stack.yml:3: services.web.command: required field is missing" in lines
    assert "stack.yml:4: services.web.comand: unknown field" in lines
    assert any(line.startswith("stack.yml:5: services.web.replicas: ") for line in lines)
    assert any(line.startswith("stack.yml:6: services.web.health") for line in lines)
    assert any(
        line.startswith("stack.yml:8: services.ok.command: environment variable NOT_SET")
        for line in lines
    )
    assert any(line.startswith("stack.yml:11: api.routes.0.path: a greedy") for line in lines)


def test_route_to_unknown_service_names_its_line() -> None:
    text = (
        "name: s\nservices:\n  a: {command: x}\napi:\n  routes:\n    - path: /x\n      service: b\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_stack(text, Path("s.yml"), {})
    assert [str(p) for p in info.value.problems] == [
        "s.yml:7: api.routes.0.service: no service named 'b'"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty"),
        ("- a\n- b\n", "the top level must be a mapping"),
        ("name: [unclosed\n", "invalid YAML"),
        ("name: s\nservices: {a: {command: x, health: {interval: soon}}}\n", "not a duration"),
        ("name: s\nservices: {a: {command: x, replicas: 1000}}\n", "less than or equal to 64"),
        ("name: s\nservices: {Bad_Name: {command: x}}\n", "name 'Bad_Name'"),
        ("name: s\napi: {routes: [{path: /x, service: a, methods: [FETCH]}]}\n", "FETCH"),
        ("name: s\nservices: {a: {command: '${vault:x}'}}\n", "unknown variable source"),
        ("name: s\ntracing: {reservoir: -1}\n", "tracing.reservoir"),
        ("name: s\ntracing: {sample_ratio: 2}\n", "tracing.sample_ratio"),
    ],
)
def test_bad_files_are_refused(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_stack(text, Path("s.yml"), {})
    assert expected in str(info.value)


def test_missing_path_and_folder_without_stack(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_stack(tmp_path / "nope.yml", {})
    with pytest.raises(ConfigError, match=r"no stackyard\.yml"):
        load_stack(tmp_path, {})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10), ("1m30s", 90), ("250ms", 0.25), ("2h", 7200), (3, 3), ("1.5", 1.5)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "s", "10x", "1m30", "-1s", "ten"])
def test_bad_durations(text: str) -> None:
    if text == "10":
        assert parse_duration(text) == 10
        return
    with pytest.raises(ValueError):
        parse_duration(text)


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.floats(allow_nan=False),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    doc=st.fixed_dictionaries(
        {},
        optional={
            "name": yaml_values,
            "services": yaml_values
            | st.dictionaries(
                st.sampled_from(["web", "x"]),
                st.dictionaries(
                    st.sampled_from(["command", "replicas", "health", "env", "cwd"]), yaml_values
                ),
            ),
            "api": yaml_values
            | st.fixed_dictionaries(
                {
                    "routes": st.lists(
                        st.dictionaries(
                            st.sampled_from(
                                ["path", "service", "methods", "strip_prefix", "timeout"]
                            ),
                            yaml_values,
                        )
                    )
                }
            ),
        },
    )
)
def test_fuzzed_documents_load_or_fail_cleanly(doc: dict[str, object]) -> None:
    text = yaml.safe_dump(doc)
    try:
        parse_stack(text, Path("f.yml"), {})
    except ConfigError as exc:
        assert exc.problems and all(str(p).startswith("f.yml") for p in exc.problems)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_fuzzed_text_loads_or_fails_cleanly(text: str) -> None:
    try:
        parse_stack(text, Path("f.yml"), {})
    except ConfigError as exc:
        assert exc.problems
