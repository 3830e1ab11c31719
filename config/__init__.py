"""Configuration: the YAML scoring model (validated into ``scoring.Model``) and the
environment settings. Every mistake is reported as ``file:line: field: message``."""

from config.errors import ConfigError, Problem
from config.loader import DEFAULT_PATH, LeadbotConfig, check_config, load_config
from config.schema import AlertSettings
from config.settings import Settings, load_settings

__all__ = [
    "DEFAULT_PATH",
    "AlertSettings",
    "ConfigError",
    "LeadbotConfig",
    "Problem",
    "Settings",
    "check_config",
    "load_config",
    "load_settings",
]
