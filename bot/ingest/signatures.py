"""Webhook signature checks: Standard Webhooks, and Segment's webhook destination.

Standard Webhooks (https://www.standardwebhooks.com) signs `{id}.{timestamp}.{body}` with
HMAC-SHA256 and refuses timestamps more than 5 minutes off, so a captured request cannot be
replayed later. Segment's destination sends only `X-Signature`, a hex HMAC-SHA1 of the body,
with no timestamp: it cannot refuse a replay. A replay carries the same messageId, and the
pipeline stores events idempotently on messageId, so a replayed call changes nothing.

This runs on every request: the `Webhook` objects and keys are built once, in `__init__`.
"""

import base64
import binascii
import hashlib
import hmac
import secrets as _secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bot.errors import SignatureError

__all__ = ["SignatureError", "WebhookVerifier", "generate_secret", "sign"]

STANDARD = "standard-webhooks"
SEGMENT = "segment"
_STANDARD_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
_SECRET_PREFIX = "whsec_"

_MALFORMED = "malformed webhook-signature: expected space-separated 'v1,<base64>' entries"

# The library says what failed only in its messages; these map them to ours.
_LIBRARY_REASONS = (
    ("too old", "timestamp too old: webhook-timestamp is more than 5 minutes off"),
    ("too new", "timestamp too new: webhook-timestamp is more than 5 minutes off"),
    ("no matching signature", "no matching signature"),
    ("invalid signature headers", "malformed webhook-timestamp: expected unix seconds"),
)


class WebhookVerifier:
    """Checks a request's signature against the configured secrets.

    `secrets` are Standard Webhooks secrets (`whsec_<base64>`); several may be given so that
    we can rotate our key: a request signed with any of them passes. `segment_secret` is the
    shared secret of a Segment webhook destination.
    """

    def __init__(self, *, secrets: Sequence[str] = (), segment_secret: str | None = None) -> None:
        self._webhooks = tuple(_webhook(s, i) for i, s in enumerate(secrets))
        if segment_secret is not None and not segment_secret:
            raise ValueError("segment_secret: must not be empty")
        self._segment_key = segment_secret.encode() if segment_secret else None

    @property
    def enabled(self) -> bool:
        """False when no secret of either kind is configured (signatures not checked)."""
        return bool(self._webhooks) or self._segment_key is not None

    def verify(self, headers: Mapping[str, str], body: bytes) -> str:
        """Return the scheme that passed, "standard-webhooks" or "segment".

        Headers are matched case-insensitively, whatever the mapping. Raises SignatureError.
        """
        if not self.enabled:  # serving SDKs only (write keys): say what would enable webhooks
            raise SignatureError(
                "webhooks are not configured on this server: set LEADBOT_WEBHOOK_SECRET "
                "(or LEADBOT_SEGMENT_SECRET) there to accept them"
            )
        lower = {k.lower(): v for k, v in headers.items()}
        if "webhook-signature" in lower:
            self._verify_standard(lower, body)
            return STANDARD
        if "x-signature" in lower:
            self._verify_segment(lower["x-signature"], body)
            return SEGMENT
        raise SignatureError(
            "missing signature: send webhook-id, webhook-timestamp and webhook-signature "
            "(Standard Webhooks) or X-Signature (Segment)"
        )

    def _verify_standard(self, lower: dict[str, str], body: bytes) -> None:
        if not self._webhooks:
            raise SignatureError("Standard Webhooks signatures are not configured on this server")
        missing = [h for h in _STANDARD_HEADERS if not lower.get(h)]
        if missing:
            raise SignatureError(f"missing {'/'.join(missing)} header")
        _check_form(lower["webhook-signature"], body)
        three = {h: lower[h] for h in _STANDARD_HEADERS}
        last: SignatureError | None = None
        for webhook in self._webhooks:
            try:
                webhook.verify(body, three, json_parse=False)
                return
            except WebhookVerificationError as exc:
                last = SignatureError(_reason(exc))
                if last.reason != "no matching signature":
                    raise last from None  # the same for every secret: no use trying the others
        assert last is not None
        raise last

    def _verify_segment(self, given: str, body: bytes) -> None:
        if self._segment_key is None:
            raise SignatureError(
                "Segment signatures (X-Signature) are not configured on this server"
            )
        try:
            given_bytes = given.strip().lower().encode("ascii")
        except UnicodeEncodeError:
            raise SignatureError("malformed X-Signature: expected a hex HMAC-SHA1") from None
        expected = hmac.digest(self._segment_key, body, hashlib.sha1).hex().encode()
        if not hmac.compare_digest(expected, given_bytes):
            raise SignatureError("no matching signature")


def generate_secret() -> str:
    """A fresh Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    return _SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(32)).decode("ascii")


def sign(secret: str, body: bytes, *, msg_id: str, timestamp: int) -> dict[str, str]:
    """The three Standard Webhooks headers for a request (tests, demo, benchmarks).

    The body must be UTF-8: the spec signs it as text.
    """
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    signature = _webhook(secret, 0).sign(msg_id, when, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def _webhook(secret: str, index: int) -> Webhook:
    """Build a library `Webhook`, with an error that names the secret by position only."""
    if not secret.startswith(_SECRET_PREFIX):
        raise ValueError(f"secrets[{index}]: expected 'whsec_<base64>', got another form")
    raw = secret[len(_SECRET_PREFIX) :].rstrip("=")
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"secrets[{index}]: not valid base64 after 'whsec_'") from exc
    if not key:
        raise ValueError(f"secrets[{index}]: empty key after 'whsec_'")
    return Webhook(key)


def _check_form(signature: str, body: bytes) -> None:
    """Refuse a malformed header or a body that is not text before any HMAC is computed.

    Releases of the library differ here (1.1 raised on a bad entry and decoded the body,
    1.3 skips bad entries and signs bytes), so the form is checked here, the same for all.
    """
    for entry in signature.split(" "):
        version, comma, digest = entry.partition(",")
        if not comma or "," in digest or not version:
            raise SignatureError(_MALFORMED)
        if version == "v1":
            try:
                base64.b64decode(digest, validate=True)
            except binascii.Error:
                raise SignatureError(_MALFORMED) from None
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:  # JSON is UTF-8; the spec signs the body as text
        raise SignatureError("body is not UTF-8") from None


def _reason(exc: WebhookVerificationError) -> str:
    text = str(exc).lower()
    for needle, reason in _LIBRARY_REASONS:
        if needle in text:
            return reason
    return f"signature check failed: {exc}"
