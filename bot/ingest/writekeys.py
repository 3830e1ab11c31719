"""Write keys: how Segment's and RudderStack's SDKs authenticate to the tracking API.

An SDK sends ``Authorization: Basic base64(<write key>:)`` (the key as the user name, an
empty password), and Segment's also puts ``writeKey`` in the body. Keys come from
``LEADBOT_WRITE_KEYS``; several may be set at once so a key can be rotated: add the new one,
move the senders over, then drop the old one.

Unlike a webhook signature, a write key is a bearer secret: whoever holds it may send
events. It cannot sign a body, as the SDKs do not; serve the API over TLS.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping, Sequence

from bot.errors import SignatureError

MISSING = (
    "missing write key: send Authorization: Basic base64(<write key>:) as the SDKs do, "
    "or writeKey in the body"
)
WRONG = "unknown write key: it is not one of this server's LEADBOT_WRITE_KEYS"
MALFORMED = "malformed Authorization header: expected Basic base64(<write key>:)"
NONE_SET = (
    "no write keys are configured on this server: set LEADBOT_WRITE_KEYS "
    "(`leadbot write-key` makes one)"
)


class WriteKeys:
    """The server's write keys; ``check`` raises SignatureError, whose reason names what
    was wrong and never which key was expected."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = tuple(key.encode() for key in keys)

    def __len__(self) -> int:
        return len(self._keys)

    def check(self, given: str | None) -> None:
        if not self._keys:
            raise SignatureError(NONE_SET)
        if given is None or given == "":
            raise SignatureError(MISSING)
        candidate = given.encode("utf-8", "surrogatepass")
        # Every key is compared, in constant time each: how long a refusal takes must not
        # tell which key a guess came close to.
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(key, candidate)
        if not matched:
            raise SignatureError(WRONG)


def header_key(headers: Mapping[str, str]) -> str | None:
    """The write key in an ``Authorization: Basic`` header; None when there is no header.
    Raises SignatureError for a header that is not Basic with a key."""
    value = headers.get("Authorization")
    if value is None:
        return None
    scheme, _, encoded = value.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise SignatureError(MALFORMED)
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise SignatureError(MALFORMED) from None
    user, _, password = decoded.partition(":")
    return user or password  # some tools put the key in the password: either one is it
