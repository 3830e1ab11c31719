"""Webhook signatures: Standard Webhooks (several secrets, timestamps) and Segment's X-Signature."""

import base64
import hashlib
import hmac
import time

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from bot.ingest.signatures import SignatureError, WebhookVerifier, generate_secret, sign

BODY = b'{"type":"track","userId":"u1","event":"Demo Requested"}'


def build_headers(secret: str, body: bytes = BODY, *, age: int = 0) -> dict[str, str]:
    """Headers for `body` signed `age` seconds ago (negative: in the future)."""
    return sign(secret, body, msg_id="msg_1", timestamp=int(time.time()) - age)


def segment_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def reason_of(verifier: WebhookVerifier, headers: dict[str, str], body: bytes = BODY) -> str:
    with pytest.raises(SignatureError) as info:
        verifier.verify(headers, body)
    return info.value.reason


@pytest.fixture
def secret() -> str:
    return generate_secret()


def test_valid_standard_signature_passes(secret: str) -> None:
    verifier = WebhookVerifier(secrets=[secret])
    assert verifier.verify(build_headers(secret), BODY) == "standard-webhooks"


def test_header_names_are_case_insensitive(secret: str) -> None:
    headers = {k.title(): v for k, v in build_headers(secret).items()}
    assert "Webhook-Signature" in headers
    assert WebhookVerifier(secrets=[secret]).verify(headers, BODY) == "standard-webhooks"


def test_aiohttp_style_headers_pass(secret: str) -> None:
    """aiohttp hands over a CIMultiDictProxy with the sender's own capitalisation."""
    headers = CIMultiDictProxy(
        CIMultiDict({k.upper(): v for k, v in build_headers(secret).items()})
    )
    assert WebhookVerifier(secrets=[secret]).verify(headers, BODY) == "standard-webhooks"


def test_one_matching_signature_among_several_passes(secret: str) -> None:
    """The sender rotates its key: it sends old and new signatures side by side."""
    other = generate_secret()
    headers = build_headers(secret)
    wrong = build_headers(other)["webhook-signature"]
    headers["webhook-signature"] = f"{wrong} {headers['webhook-signature']}"
    assert WebhookVerifier(secrets=[secret]).verify(headers, BODY) == "standard-webhooks"


def test_any_configured_secret_passes(secret: str) -> None:
    """We rotate our key: requests signed with the old or the new secret both pass."""
    old = generate_secret()
    verifier = WebhookVerifier(secrets=[secret, old])
    assert verifier.verify(build_headers(old), BODY) == "standard-webhooks"
    assert verifier.verify(build_headers(secret), BODY) == "standard-webhooks"


def test_wrong_secret_is_refused(secret: str) -> None:
    verifier = WebhookVerifier(secrets=[secret])
    assert reason_of(verifier, build_headers(generate_secret())) == "no matching signature"


def test_tampered_body_is_refused(secret: str) -> None:
    verifier = WebhookVerifier(secrets=[secret])
    tampered = BODY.replace(b"u1", b"u2")
    assert reason_of(verifier, build_headers(secret), tampered) == "no matching signature"


def test_unknown_signature_version_is_not_a_match(secret: str) -> None:
    headers = build_headers(secret)
    headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
    verifier = WebhookVerifier(secrets=[secret])
    assert reason_of(verifier, headers) == "no matching signature"


def test_stale_timestamp_is_refused(secret: str) -> None:
    verifier = WebhookVerifier(secrets=[secret])
    reason = reason_of(verifier, build_headers(secret, age=6 * 60))
    assert reason.startswith("timestamp too old")
    assert "more than 5 minutes off" in reason


def test_future_timestamp_is_refused(secret: str) -> None:
    verifier = WebhookVerifier(secrets=[secret])
    reason = reason_of(verifier, build_headers(secret, age=-6 * 60))
    assert reason.startswith("timestamp too new")


def test_timestamp_within_tolerance_passes(secret: str) -> None:
    verifier = WebhookVerifier(secrets=[secret])
    assert verifier.verify(build_headers(secret, age=4 * 60), BODY) == "standard-webhooks"
    assert verifier.verify(build_headers(secret, age=-4 * 60), BODY) == "standard-webhooks"


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp"])
def test_missing_header_is_named(secret: str, header: str) -> None:
    headers = build_headers(secret)
    del headers[header]
    assert reason_of(WebhookVerifier(secrets=[secret]), headers) == f"missing {header} header"


def test_empty_headers_are_missing(secret: str) -> None:
    headers = build_headers(secret) | {"webhook-id": "", "webhook-timestamp": ""}
    reason = reason_of(WebhookVerifier(secrets=[secret]), headers)
    assert reason == "missing webhook-id/webhook-timestamp header"


def test_no_signature_header_at_all(secret: str) -> None:
    verifier = WebhookVerifier(secrets=[secret], segment_secret="s3cret")
    reason = reason_of(verifier, {"content-type": "application/json"})
    assert reason.startswith("missing signature:")
    assert "webhook-signature" in reason
    assert "X-Signature" in reason


@pytest.mark.parametrize(
    "value",
    ["v1", "v1,not base64!", "v1,a,b"],
    ids=["no-comma", "bad-base64", "two-commas"],
)
def test_malformed_signature_header(secret: str, value: str) -> None:
    headers = build_headers(secret) | {"webhook-signature": value}
    reason = reason_of(WebhookVerifier(secrets=[secret]), headers)
    assert reason.startswith("malformed webhook-signature")


def test_malformed_timestamp_header(secret: str) -> None:
    headers = build_headers(secret) | {"webhook-timestamp": "yesterday"}
    reason = reason_of(WebhookVerifier(secrets=[secret]), headers)
    assert reason.startswith("malformed webhook-timestamp")


def test_non_utf8_body_is_refused(secret: str) -> None:
    body = b"\xff\xfe not utf-8"
    headers = build_headers(secret)
    assert reason_of(WebhookVerifier(secrets=[secret]), headers, body) == "body is not UTF-8"


def test_reasons_never_contain_the_secret(secret: str) -> None:
    key = secret.removeprefix("whsec_")
    verifier = WebhookVerifier(secrets=[secret], segment_secret="segment-s3cret")
    cases = [
        build_headers(generate_secret()),
        build_headers(secret, age=3600),
        {"x-signature": "00"},
        {},
    ]
    for headers in cases:
        reason = reason_of(verifier, headers)
        assert key not in reason
        assert "segment-s3cret" not in reason


def test_segment_signature_passes() -> None:
    verifier = WebhookVerifier(segment_secret="s3cret")
    headers = {"X-Signature": segment_signature("s3cret", BODY)}
    assert verifier.verify(headers, BODY) == "segment"


def test_segment_signature_accepts_upper_case_hex() -> None:
    verifier = WebhookVerifier(segment_secret="s3cret")
    headers = {"x-signature": segment_signature("s3cret", BODY).upper()}
    assert verifier.verify(headers, BODY) == "segment"


def test_segment_wrong_secret_or_body_is_refused() -> None:
    verifier = WebhookVerifier(segment_secret="s3cret")
    wrong_key = {"X-Signature": segment_signature("other", BODY)}
    assert reason_of(verifier, wrong_key) == "no matching signature"
    right_key = {"X-Signature": segment_signature("s3cret", BODY)}
    assert reason_of(verifier, right_key, BODY + b" ") == "no matching signature"


def test_segment_non_ascii_signature_is_malformed() -> None:
    verifier = WebhookVerifier(segment_secret="s3cret")
    assert reason_of(verifier, {"X-Signature": "é"}).startswith("malformed X-Signature")


def test_segment_missing_signature() -> None:
    verifier = WebhookVerifier(segment_secret="s3cret")
    assert reason_of(verifier, {}).startswith("missing signature")


def test_standard_scheme_not_configured() -> None:
    verifier = WebhookVerifier(segment_secret="s3cret")
    reason = reason_of(verifier, build_headers(generate_secret()))
    assert reason == "Standard Webhooks signatures are not configured on this server"


def test_segment_scheme_not_configured(secret: str) -> None:
    verifier = WebhookVerifier(secrets=[secret])
    reason = reason_of(verifier, {"X-Signature": segment_signature("s3cret", BODY)})
    assert "Segment" in reason
    assert "not configured" in reason


def test_standard_headers_win_over_segment(secret: str) -> None:
    """With both present the Standard Webhooks signature is the one checked."""
    verifier = WebhookVerifier(secrets=[secret], segment_secret="s3cret")
    headers = build_headers(generate_secret()) | {"X-Signature": segment_signature("s3cret", BODY)}
    assert reason_of(verifier, headers) == "no matching signature"


def test_enabled() -> None:
    assert not WebhookVerifier().enabled
    assert WebhookVerifier(secrets=[generate_secret()]).enabled
    assert WebhookVerifier(segment_secret="s3cret").enabled


def test_not_configured_verifier_refuses_everything(secret: str) -> None:
    verifier = WebhookVerifier()
    assert "not configured" in reason_of(verifier, build_headers(secret))


def test_generate_secret_form_and_uniqueness() -> None:
    first, second = generate_secret(), generate_secret()
    assert first != second
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32


def test_sign_matches_the_spec_by_hand(secret: str) -> None:
    """HMAC-SHA256(key, "{id}.{timestamp}.{body}"), base64, prefixed "v1,"."""
    headers = sign(secret, BODY, msg_id="msg_42", timestamp=1_700_000_000)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, b"msg_42.1700000000." + BODY, hashlib.sha256).digest()
    assert headers == {
        "webhook-id": "msg_42",
        "webhook-timestamp": "1700000000",
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("plain-secret", "expected 'whsec_<base64>'"),
        ("whsec_", "empty key"),
        ("whsec_not*base64", "not valid base64"),
    ],
    ids=["no-prefix", "empty", "bad-base64"],
)
def test_bad_configured_secret_is_refused_without_echoing_it(bad: str, reason: str) -> None:
    with pytest.raises(ValueError, match=r"secrets\[1\]") as info:
        WebhookVerifier(secrets=[generate_secret(), bad])
    assert reason in str(info.value)
    assert "plain-secret" not in str(info.value)
    assert "not*base64" not in str(info.value)


def test_empty_segment_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="segment_secret"):
        WebhookVerifier(segment_secret="")
