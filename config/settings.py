"""Environment settings: where the database is, which config file, secrets, server limits.

``load_settings(environ)`` reads an explicit mapping so tests never touch ``os.environ``;
errors raise ConfigError naming the environment variable, and never echo a secret.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.errors import ConfigError, Problem
from config.pydantic_errors import describe

ENVIRONMENT = "environment"
"""The ``file`` of a Problem found in environment settings."""

WEBHOOK_SECRET_PREFIX = "whsec_"
WRITE_KEY_MIN_LENGTH = 8
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
IngestMode = Literal["process", "thread"]
Port = Annotated[int, Field(ge=0, le=65535)]
ByteLimit = Annotated[int, Field(gt=0)]


class Settings(BaseSettings):
    """Settings from the environment. Each field is read from the variable named by its
    alias; secrets are ``SecretStr`` so reprs and logs show ``**********``."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=False)

    database_url: str = Field("sqlite+aiosqlite:///./leadbot.db", alias="DATABASE_URL")
    config_path: str | None = Field(None, alias="LEADBOT_CONFIG")
    # One or several space-separated whsec_ secrets: several while a key is rotated.
    webhook_secret: SecretStr | None = Field(None, alias="LEADBOT_WEBHOOK_SECRET")
    segment_secret: SecretStr | None = Field(None, alias="LEADBOT_SEGMENT_SECRET")
    # Comma-separated write keys of the SDK routes (/v1/*): several while a key is rotated.
    write_keys: SecretStr | None = Field(None, alias="LEADBOT_WRITE_KEYS")
    # None: every interface, or only this machine (127.0.0.1) when serving --insecure.
    host: str | None = Field(None, alias="LEADBOT_HOST")
    port: Port = Field(8080, alias="LEADBOT_PORT")
    max_event_bytes: ByteLimit = Field(32768, alias="LEADBOT_MAX_EVENT_BYTES")
    max_body_bytes: ByteLimit = Field(1_048_576, alias="LEADBOT_MAX_BODY_BYTES")
    # A request body must arrive within this many seconds (408 and the connection closed).
    read_timeout: Annotated[float, Field(gt=0)] = Field(15.0, alias="LEADBOT_READ_TIMEOUT")
    log_level: LogLevel = Field("INFO", alias="LEADBOT_LOG_LEVEL")
    # "process": the ingest writer runs in a child process (a second core under load);
    # "thread": in the server process (tests, debugging, constrained hosts).
    ingest: IngestMode = Field("process", alias="LEADBOT_INGEST")
    # 1: bind the port with SO_REUSEPORT, so several ``serve`` replicas on one machine share
    # it and the kernel spreads connections between them (PostgreSQL only; README).
    reuse_port: bool = Field(False, alias="LEADBOT_REUSE_PORT")
    # Hours an undeliverable outbox message keeps being retried before it goes dead.
    outbox_give_up_hours: Annotated[float, Field(gt=0)] = Field(
        24.0, alias="LEADBOT_OUTBOX_GIVE_UP_HOURS"
    )
    # Slack: on when a bot token is set (HTTP mode also needs the signing secret; Socket
    # Mode the app-level token).
    slack_bot_token: SecretStr | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN")
    slack_api_url: str | None = Field(None, alias="SLACK_API_URL")
    slack_channel: str | None = Field(None, alias="LEADBOT_SLACK_CHANNEL")
    # HubSpot (bot/crm): a private app's access token turns score writes and pulls on; the
    # app's client secret verifies its webhooks (X-HubSpot-Signature-v3). The API URL is
    # HubSpot's unless overridden (a proxy, or a test's fake).
    hubspot_access_token: SecretStr | None = Field(None, alias="HUBSPOT_ACCESS_TOKEN")
    hubspot_client_secret: SecretStr | None = Field(None, alias="HUBSPOT_CLIENT_SECRET")
    hubspot_api_url: str | None = Field(None, alias="HUBSPOT_API_URL")
    # The URL the world reaches leadbot at ("https://leadbot.example.com"), when a TLS proxy
    # hides it: HubSpot signs the URL it called, which the server behind the proxy sees as
    # http (bot/crm/webhooks.py accepts a signature over either).
    public_url: str | None = Field(None, alias="LEADBOT_PUBLIC_URL")
    # Salesforce (bot/crm): the instance URL with an access token, or the username, password
    # and security token simple-salesforce logs in with (SALESFORCE_DOMAIN "test" for a
    # sandbox).
    salesforce_instance_url: str | None = Field(None, alias="SALESFORCE_INSTANCE_URL")
    salesforce_access_token: SecretStr | None = Field(None, alias="SALESFORCE_ACCESS_TOKEN")
    salesforce_username: str | None = Field(None, alias="SALESFORCE_USERNAME")
    salesforce_password: SecretStr | None = Field(None, alias="SALESFORCE_PASSWORD")
    salesforce_security_token: SecretStr | None = Field(None, alias="SALESFORCE_SECURITY_TOKEN")
    salesforce_domain: str | None = Field(None, alias="SALESFORCE_DOMAIN")
    # Teams: the Microsoft 365 Agents SDK reads its own variables
    # (CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID, …) with its own loader;
    # ``load_settings`` keeps them here as given, for ``bot.teams.runtime``. Never shown.
    agents_sdk: dict[str, str] = Field(
        default_factory=dict, alias="AGENTS_SDK_VARIABLES", repr=False, exclude=True
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("webhook_secret")
    @classmethod
    def _standard_webhooks_secrets(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            split_webhook_secrets(value.get_secret_value())
        return value

    @field_validator("write_keys")
    @classmethod
    def _write_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            split_write_keys(value.get_secret_value())
        return value

    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        """The Standard Webhooks secrets, in the order given; empty when none is set."""
        if self.webhook_secret is None:
            return ()
        return split_webhook_secrets(self.webhook_secret.get_secret_value())

    @property
    def write_key_list(self) -> tuple[str, ...]:
        """The SDK write keys, in the order given; empty when none is set."""
        if self.write_keys is None:
            return ()
        return split_write_keys(self.write_keys.get_secret_value())


def split_webhook_secrets(value: str) -> tuple[str, ...]:
    """Space-separated Standard Webhooks secrets, each checked; an error names the secret by
    its position when there are several, never by its value."""
    secrets = tuple(value.split())
    for n, secret in enumerate(secrets, 1):
        try:
            check_webhook_secret(secret)
        except ValueError as err:
            if len(secrets) == 1:
                raise
            raise ValueError(f"secret {n} of {len(secrets)}: {err}") from None
    return secrets


def split_write_keys(value: str) -> tuple[str, ...]:
    """Comma-separated write keys (spaces around the commas ignored), each checked; an error
    names the key by its position, never by its value."""
    keys = tuple(key.strip() for key in value.split(","))
    for n, key in enumerate(keys, 1):
        problem = _write_key_problem(key)
        if problem:
            raise ValueError(f"key {n} of {len(keys)}: {problem}")
    return keys


def _write_key_problem(key: str) -> str | None:
    if not key:
        return "empty (two commas in a row, or one at an end?)"
    if any(c.isspace() for c in key):
        return "contains whitespace; separate keys with commas (the key is not shown)"
    # HTTP Basic ends the user name, which carries the key, at the first colon.
    if ":" in key or not (key.isascii() and key.isprintable()):
        return (
            "may hold only printable ASCII characters other than ':' "
            "(`leadbot write-key` prints a fresh key; the key is not shown)"
        )
    if len(key) < WRITE_KEY_MIN_LENGTH:
        return (
            f"shorter than {WRITE_KEY_MIN_LENGTH} characters: too easy to guess "
            "(`leadbot write-key` prints a fresh key; the key is not shown)"
        )
    return None


def check_webhook_secret(secret: str) -> None:
    """A Standard Webhooks signing secret is ``whsec_`` + base64 of the key bytes. The
    message says what is wrong without repeating any of the secret."""
    if not secret.startswith(WEBHOOK_SECRET_PREFIX):
        raise ValueError(
            f"expected a signing secret starting with {WEBHOOK_SECRET_PREFIX} (as the webhook "
            "sender shows it); the value given does not (not shown)"
        )
    try:
        key = base64.b64decode(secret.removeprefix(WEBHOOK_SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise ValueError(
            f"the part after {WEBHOOK_SECRET_PREFIX} must be non-empty base64; "
            "the value given is not (not shown)"
        )


_SECRETS = {
    "webhook_secret", "segment_secret", "write_keys", "agents_sdk", "hubspot_access_token",
    "hubspot_client_secret", "salesforce_access_token", "salesforce_password",
    "salesforce_security_token",
}  # fmt: skip

AGENTS_SDK_PREFIXES = ("CONNECTIONS__", "CONNECTIONSMAP__", "AGENTAPPLICATION__")
"""The sections the Agents SDK's ``load_configuration_from_env`` reads."""


def agents_sdk_variables(env: Mapping[str, str]) -> dict[str, str]:
    """The Agents SDK's own variables in ``env`` (non-empty ones), by their SDK names."""
    return {
        key: value
        for key, value in env.items()
        if key.startswith(AGENTS_SDK_PREFIXES) and value.strip() != ""
    }


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``environ`` (``os.environ`` when None). Empty variables count as unset.

    Every field is passed explicitly, defaults included, so no value can come from
    anywhere but ``environ``."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in Settings.model_fields.values():
        alias = str(field.alias)
        raw = env.get(alias)
        values[alias] = field.get_default() if raw is None or raw.strip() == "" else raw
    values["AGENTS_SDK_VARIABLES"] = agents_sdk_variables(env)
    try:
        return Settings(**values)
    except ValidationError as err:
        raise ConfigError(_problems(err)) from None


def _problems(err: ValidationError) -> list[Problem]:
    names = {str(f.alias): name for name, f in Settings.model_fields.items()}
    problems = []
    for error in err.errors(include_url=False):
        variable = str(error["loc"][0]) if error["loc"] else ""
        secret = names.get(variable) in _SECRETS
        message = _secret_message(error) if secret else describe(error, None)
        problems.append(Problem(ENVIRONMENT, None, variable, message))
    return problems


def _secret_message(error: Any) -> str:
    """Only our own validator's words: pydantic's messages may quote the input."""
    ctx = error.get("ctx") or {}
    if error["type"] == "value_error" and "error" in ctx:
        return str(ctx["error"])
    return "invalid value (not shown)"
