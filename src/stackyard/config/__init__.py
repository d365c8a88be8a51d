"""Stack configuration: the schema (``models``), the loader and its errors."""

from .api import ApiConfig, RouteConfig
from .durations import format_duration, parse_duration
from .errors import ConfigError, Problem
from .loader import LoadedStack, find_stack_file, load_stack, parse_stack
from .models import HealthConfig, ServiceConfig, StackConfig

__all__ = [
    "ApiConfig",
    "ConfigError",
    "HealthConfig",
    "LoadedStack",
    "Problem",
    "RouteConfig",
    "ServiceConfig",
    "StackConfig",
    "find_stack_file",
    "format_duration",
    "load_stack",
    "parse_duration",
    "parse_stack",
]
