"""Environment settings from an explicit mapping: defaults, overrides, errors that name the
variable, and secrets that never show."""

from __future__ import annotations

import base64

import pytest

from config import ConfigError, Settings, load_settings

SECRET_KEY = base64.b64encode(b"k" * 24).decode()
GOOD_SECRET = f"whsec_{SECRET_KEY}"


def test_defaults_from_an_empty_mapping() -> None:
    settings = load_settings({})
    assert settings.database_url == "sqlite+aiosqlite:///./leadbot.db"
    assert settings.config_path is None
    assert settings.webhook_secret is None
    assert settings.segment_secret is None
    assert (settings.host, settings.port) == (None, 8080)  # serve picks the interface
    assert (settings.max_event_bytes, settings.max_body_bytes) == (32768, 1048576)
    assert settings.log_level == "INFO"


def test_overrides() -> None:
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql+asyncpg://db/leadbot",
            "LEADBOT_CONFIG": "/etc/leadbot.yaml",
            "LEADBOT_WEBHOOK_SECRET": GOOD_SECRET,
            "LEADBOT_SEGMENT_SECRET": "segment-shared",
            "LEADBOT_HOST": "127.0.0.1",
            "LEADBOT_PORT": "9000",
            "LEADBOT_MAX_EVENT_BYTES": "1024",
            "LEADBOT_MAX_BODY_BYTES": "4096",
            "LEADBOT_LOG_LEVEL": "debug",
            "UNRELATED": "ignored",
        }
    )
    assert settings.database_url == "postgresql+asyncpg://db/leadbot"
    assert settings.config_path == "/etc/leadbot.yaml"
    assert settings.webhook_secret is not None
    assert settings.webhook_secret.get_secret_value() == GOOD_SECRET
    assert settings.segment_secret is not None
    assert settings.segment_secret.get_secret_value() == "segment-shared"
    assert (settings.host, settings.port) == ("127.0.0.1", 9000)
    assert (settings.max_event_bytes, settings.max_body_bytes) == (1024, 4096)
    assert settings.log_level == "DEBUG"


def test_the_process_environment_is_not_read_when_a_mapping_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEADBOT_PORT", "1234")
    assert load_settings({}).port == 8080
    assert load_settings().port == 1234  # None means os.environ


def test_empty_variables_count_as_unset() -> None:
    settings = load_settings({"LEADBOT_PORT": "", "LEADBOT_WEBHOOK_SECRET": " "})
    assert settings.port == 8080
    assert settings.webhook_secret is None


@pytest.mark.parametrize("port", ["abc", "70000", "-1", "80.5"])
def test_bad_port_names_the_variable(port: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"LEADBOT_PORT": port})
    (problem,) = caught.value.problems
    assert problem.field == "LEADBOT_PORT"
    assert repr(port) in problem.message
    assert str(caught.value).startswith("environment: LEADBOT_PORT: ")


def test_bad_log_level_lists_the_allowed_levels() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"LEADBOT_LOG_LEVEL": "loud"})
    (problem,) = caught.value.problems
    assert problem.field == "LEADBOT_LOG_LEVEL"
    for level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        assert level in problem.message


def test_every_bad_variable_is_reported() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"LEADBOT_PORT": "x", "LEADBOT_MAX_BODY_BYTES": "0"})
    assert {p.field for p in caught.value.problems} == {"LEADBOT_PORT", "LEADBOT_MAX_BODY_BYTES"}


@pytest.mark.parametrize(
    "secret",
    [
        "hunter2-plain-password",
        "whsec_",
        "whsec_not*base64*at*all",
        f"WHSEC_{SECRET_KEY}",
    ],
)
def test_malformed_webhook_secret_is_named_but_never_shown(secret: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"LEADBOT_WEBHOOK_SECRET": secret})
    (problem,) = caught.value.problems
    assert problem.field == "LEADBOT_WEBHOOK_SECRET"
    assert "whsec_" in problem.message
    body = secret.removeprefix("whsec_").removeprefix("WHSEC_")
    assert not body or body not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_secrets_never_appear_in_repr_or_str() -> None:
    settings = load_settings(
        {"LEADBOT_WEBHOOK_SECRET": GOOD_SECRET, "LEADBOT_SEGMENT_SECRET": "segment-shared"}
    )
    for text in (repr(settings), str(settings), repr(settings.model_dump())):
        assert SECRET_KEY not in text
        assert "segment-shared" not in text


def test_settings_is_a_pydantic_settings_class() -> None:
    from pydantic_settings import BaseSettings

    assert issubclass(Settings, BaseSettings)
