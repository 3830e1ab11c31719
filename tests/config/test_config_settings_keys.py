"""Several webhook secrets (rotation) and the SDK write keys: how they are split, what is
refused, and that no error ever shows a secret or a key."""

from __future__ import annotations

import base64

import pytest

from config import ConfigError, load_settings

OLD = "whsec_" + base64.b64encode(b"old-key-" * 4).decode()
NEW = "whsec_" + base64.b64encode(b"new-key-" * 4).decode()


def _problem(variable: str, value: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings({variable: value})
    (problem,) = caught.value.problems
    assert problem.field == variable
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    return str(caught.value)


def test_several_space_separated_webhook_secrets_are_all_kept_in_order() -> None:
    settings = load_settings({"LEADBOT_WEBHOOK_SECRET": f"  {NEW} \t {OLD}\n"})
    assert settings.webhook_secrets == (NEW, OLD)
    assert all(isinstance(s, str) for s in settings.webhook_secrets)


def test_one_webhook_secret_and_none() -> None:
    assert load_settings({"LEADBOT_WEBHOOK_SECRET": OLD}).webhook_secrets == (OLD,)
    assert load_settings({}).webhook_secrets == ()


@pytest.mark.parametrize(
    "bad", ["hunter2-plain-password", "whsec_not*base64*at*all", "whsec_", "WHSEC_c2VjcmV0cw=="]
)
def test_a_bad_secret_among_several_is_named_by_position_never_shown(bad: str) -> None:
    message = _problem("LEADBOT_WEBHOOK_SECRET", f"{OLD} {bad} {NEW}")
    assert message.startswith("environment: LEADBOT_WEBHOOK_SECRET: secret 2 of 3: ")
    assert "whsec_" in message
    for secret in (OLD, NEW, bad):
        body = secret.removeprefix("whsec_").removeprefix("WHSEC_")
        assert not body or body not in message


def test_write_keys_are_split_on_commas_with_spaces_around_them_ignored() -> None:
    settings = load_settings({"LEADBOT_WRITE_KEYS": " key-one-123 ,key-two-456,  key-three-789 "})
    assert settings.write_key_list == ("key-one-123", "key-two-456", "key-three-789")
    assert load_settings({"LEADBOT_WRITE_KEYS": "only-one-key"}).write_key_list == ("only-one-key",)
    assert load_settings({"LEADBOT_WRITE_KEYS": "  "}).write_key_list == ()
    assert load_settings({}).write_keys is None


@pytest.mark.parametrize(
    ("value", "position", "what"),
    [
        ("first-key-1,,third-key-3", "key 2 of 3", "empty"),
        ("first-key-1,", "key 2 of 2", "empty"),
        ("first-key-1, secret with-space", "key 2 of 2", "whitespace"),
        ("Sh0rtKy", "key 1 of 1", "shorter than 8 characters"),
        ("first-key-1,user:password-x", "key 2 of 2", "other than ':'"),
        ("first-key-1,schlüssel-geheim", "key 2 of 2", "printable ASCII"),
    ],
)
def test_a_bad_write_key_is_named_by_position_never_shown(
    value: str, position: str, what: str
) -> None:
    message = _problem("LEADBOT_WRITE_KEYS", value)
    assert message.startswith(f"environment: LEADBOT_WRITE_KEYS: {position}: ")
    assert what in message
    for key in value.split(","):
        for part in key.split():
            # no fragment of a key: not the key, not a word of it, not its first characters
            assert part[:5] not in message.replace("LEADBOT_WRITE_KEYS", "")


def test_write_keys_never_appear_in_repr_or_dump() -> None:
    settings = load_settings({"LEADBOT_WRITE_KEYS": "visible-if-leaked-1,visible-if-leaked-2"})
    for text in (repr(settings), str(settings), repr(settings.model_dump())):
        assert "visible-if-leaked" not in text
