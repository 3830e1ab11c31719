"""Parsing Segment-spec webhook bodies into InboundEvents, and the errors clients see."""

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import InputError
from bot.ingest.inbound import (
    CALL_TYPES,
    MAX_BATCH_ITEMS,
    MAX_DEPTH,
    MAX_PROBLEMS,
    InboundEvent,
    _deeper_than,
    first_tree_problem,
    parse_body,
    parse_doc,
)

NOW = 1_714_557_600.0  # 2024-05-01T10:00:00Z


END_OF_TIME = 253_402_300_799.0  # 9999-12-31T23:59:59Z: a receipt no event time is after


def parse(doc: Any, now: float = NOW, **limits: int) -> list[InboundEvent]:
    return parse_body(orjson.dumps(doc), now=now, **limits)


def parse_one(call: dict[str, Any], now: float = NOW) -> InboundEvent:
    [event] = parse(call, now)
    return event


def refused(doc: Any, **limits: int) -> InputError:
    body = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    with pytest.raises(InputError) as info:
        parse_body(body, now=NOW, **limits)
    return info.value


def build_track(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "userId": "u1", "event": "Demo Requested"} | fields


# --- call types ------------------------------------------------------------------------


def test_identify() -> None:
    event = parse_one(
        {
            "type": "identify",
            "userId": "u1",
            "messageId": "m-1",
            "traits": {"email": "  Ada@Example.COM ", "title": "VP Sales"},
            "timestamp": "2024-05-01T09:00:00Z",
        }
    )
    assert event.type == "identify"
    assert event.message_id == "m-1"
    assert event.user_id == "u1"
    assert event.email == "ada@example.com"
    assert event.traits == {"email": "  Ada@Example.COM ", "title": "VP Sales"}
    assert event.properties == {}
    assert event.name is None
    assert event.timestamp == NOW - 3600


def test_track() -> None:
    event = parse_one(build_track(properties={"plan": "pro"}, anonymousId="a1"))
    assert event.type == "track"
    assert event.name == "Demo Requested"
    assert event.properties == {"plan": "pro"}
    assert event.traits == {}
    assert (event.user_id, event.anonymous_id) == ("u1", "a1")


def test_track_carries_no_traits_even_if_sent() -> None:
    event = parse_one(build_track(traits={"title": "CEO"}))
    assert event.traits == {}


def test_page() -> None:
    event = parse_one(
        {
            "type": "page",
            "anonymousId": "a1",
            "name": "Pricing",
            "properties": {"path": "/pricing", "url": "https://acme.test/pricing"},
        }
    )
    assert event.type == "page"
    assert event.name == "Pricing"
    assert event.properties == {"path": "/pricing", "url": "https://acme.test/pricing"}


def test_screen_is_a_page() -> None:
    event = parse_one({"type": "screen", "userId": "u1", "name": "Settings"})
    assert event.type == "page"
    assert event.name == "Settings"
    assert event.properties == {"path": ""}


def test_group_traits_become_company_traits() -> None:
    event = parse_one(
        {
            "type": "group",
            "userId": "u1",
            "groupId": 42,
            "traits": {"name": "Acme", "employees": 300, "email": "info@acme.test"},
        }
    )
    assert event.type == "identify"
    # The group spec's `employees` is the identify spec's company.employee_count, which
    # the model reads.
    assert event.traits == {
        "company": {"name": "Acme", "employee_count": 300, "email": "info@acme.test", "id": "42"}
    }
    assert event.email is None  # the company's address is not the person's


def test_group_keeps_an_explicit_employee_count() -> None:
    traits = {"employees": 10, "employee_count": 300, "industry": "Software", "plan": "pro"}
    event = parse_one({"type": "group", "userId": "u1", "groupId": "g", "traits": traits})
    company = {"employee_count": 300, "industry": "Software", "plan": "pro", "id": "g"}
    assert event.traits == {"company": company}


def test_identify_traits_from_context_traits() -> None:
    """RudderStack's SDKs put identify traits in context.traits only."""
    event = parse_one({
        "type": "identify", "userId": "u1",
        "context": {"traits": {"email": "a@x.test", "title": "VP Sales", "plan": "free"}},
        "traits": {"plan": "pro"},
    })  # fmt: skip
    assert event.traits == {"email": "a@x.test", "title": "VP Sales", "plan": "pro"}
    assert event.email == "a@x.test"
    track = parse_one(build_track(context={"traits": {"title": "VP Sales"}}))
    assert track.traits == {}  # only an identify's context.traits are the person's traits


def test_alias() -> None:
    event = parse_one({"type": "alias", "userId": "u1", "previousId": "anon-9"})
    assert event.type == "alias"
    assert (event.user_id, event.previous_id) == ("u1", "anon-9")


def test_alias_needs_both_ids() -> None:
    error = refused({"type": "alias"})
    assert error.problems == [
        ("previousId", "alias needs previousId (the old id)"),
        ("userId", "alias needs userId (the new id)"),
    ]


def test_unknown_and_missing_type() -> None:
    error = refused({"batch": [{"type": "foo", "userId": "u"}, {"userId": "u"}]})
    expected = ", ".join(CALL_TYPES)
    assert error.problems == [
        ("batch[0].type", f"unknown call type 'foo': expected one of {expected}"),
        ("batch[1].type", f"missing call type: expected one of {expected}"),
    ]
    assert error.status == 400


def test_track_needs_an_event_name() -> None:
    assert refused(build_track(event="  ")).problems == [
        ("event", "track needs a non-empty event name")
    ]
    assert refused(build_track(event=None)).problems[0][0] == "event"
    assert refused(build_track(event=3)).problems == [
        ("event", "expected a string, got the number 3")
    ]


def test_raw_is_the_call_as_received() -> None:
    call = build_track(properties={"plan": "pro"}, context={"ip": "1.2.3.4"})
    event = parse_one(call)
    assert orjson.loads(event.raw) == call


# --- identity ------------------------------------------------------------------------


def test_identity_precedence() -> None:
    both = parse_one(build_track(anonymousId="a1", properties={"email": "x@y.z"}))
    assert both.identity == ("user_id", "u1")
    by_email = parse_one({"type": "identify", "anonymousId": "a1", "traits": {"email": "X@y.z"}})
    assert by_email.identity == ("email", "x@y.z")
    anonymous = parse_one({"type": "page", "anonymousId": "a1"})
    assert anonymous.identity == ("anonymous_id", "a1")


def test_numeric_user_id_is_stringified() -> None:
    assert parse_one(build_track(userId=1234)).user_id == "1234"


def test_email_sources_in_order() -> None:
    call = {
        "type": "identify",
        "anonymousId": "a",
        "traits": {"email": "first@a.test"},
        "context": {"traits": {"email": "third@a.test"}},
    }
    assert parse_one(call).email == "first@a.test"
    track = build_track(userId=None, properties={"email": "second@a.test"})
    assert parse_one(track).email == "second@a.test"
    page = {"type": "page", "context": {"traits": {"email": "Third@A.test"}}}
    assert parse_one(page).email == "third@a.test"


def test_batch_context_supplies_email() -> None:
    doc = {"context": {"traits": {"email": "ctx@a.test"}}, "batch": [{"type": "page"}]}
    [event] = parse(doc)
    assert event.email == "ctx@a.test"


def test_missing_identity() -> None:
    error = refused({"batch": [build_track(), build_track(userId=None)]})
    assert error.problems == [
        ("batch[1].userId", "missing identity: give userId, anonymousId or traits.email")
    ]


@pytest.mark.parametrize(
    ("call", "field", "message"),
    [
        (
            {"type": "identify", "traits": {"email": "nobody"}},
            "traits.email",
            "not an email address: 'nobody'",
        ),
        (
            build_track(userId=None, properties={"email": "@acme.test"}),
            "properties.email",
            "not an email address: '@acme.test'",
        ),
        (
            {"type": "page", "context": {"traits": {"email": "ada@"}}},
            "context.traits.email",
            "not an email address: 'ada@'",
        ),
        (
            {"type": "identify", "traits": {"email": ["a@b.c"]}},
            "traits.email",
            "expected an email address, got a list",
        ),
        (build_track(userId=["u"]), "userId", "expected a string or number, got a list"),
        (build_track(userId=True), "userId", "expected a string or number, got true"),
        (
            build_track(anonymousId="a" * 256),
            "anonymousId",
            "is 256 characters, over the limit of 255",
        ),
    ],
)
def test_identity_errors(call: dict[str, Any], field: str, message: str) -> None:
    assert refused(call).problems == [(field, message)]


def test_bad_email_is_refused_even_with_a_user_id() -> None:
    error = refused({"type": "identify", "userId": "u1", "traits": {"email": "n/a"}})
    assert error.problems == [("traits.email", "not an email address: 'n/a'")]


def test_empty_email_counts_as_absent() -> None:
    assert parse_one({"type": "identify", "userId": "u1", "traits": {"email": " "}}).email is None


# A NUL is refused on its own (see below); surrogates are not text orjson can write.
_NO_NUL = st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")


@given(
    st.dictionaries(
        st.text(_NO_NUL, max_size=12).filter(
            lambda k: k not in {"userId", "anonymousId", "traits", "properties", "context", "batch"}
        ),
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers(-(2**63), 2**63 - 1)
            | st.text(_NO_NUL, max_size=20),
            lambda inner: (
                st.lists(inner, max_size=3) | st.dictionaries(st.text(_NO_NUL, max_size=5), inner)
            ),
            max_leaves=8,
        ),
        max_size=6,
    ),
    st.sampled_from([t for t in CALL_TYPES if t != "alias"]),
)
def test_any_call_without_identity_is_refused(extra: dict[str, Any], kind: str) -> None:
    error = refused(extra | {"type": kind})
    missing = ("userId", "missing identity: give userId, anonymousId or traits.email")
    assert missing in error.problems


# --- page paths ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("properties", "path"),
    [
        ({"url": "https://acme.test/pricing?plan=pro#faq"}, "/pricing"),
        ({"url": "https://acme.test"}, "/"),
        ({"url": "https://acme.test/a", "path": "/given"}, "/given"),
        ({}, ""),
    ],
)
def test_page_path(properties: dict[str, Any], path: str) -> None:
    event = parse_one({"type": "page", "userId": "u", "properties": properties})
    assert event.properties["path"] == path
    assert event.properties.get("url") == properties.get("url")


def test_page_url_from_context_page() -> None:
    call = {"type": "page", "userId": "u", "context": {"page": {"url": "https://a.test/docs/x"}}}
    event = parse_one(call)
    assert event.properties == {"url": "https://a.test/docs/x", "path": "/docs/x"}


def test_page_does_not_change_the_raw_call() -> None:
    call = {"type": "page", "userId": "u", "properties": {"url": "https://a.test/p"}}
    event = parse_one(call)
    assert orjson.loads(event.raw)["properties"] == {"url": "https://a.test/p"}


def test_page_bad_url() -> None:
    error = refused({"type": "page", "userId": "u", "properties": {"url": "http://[::1"}})
    assert error.problems == [("properties.url", "not a URL: 'http://[::1'")]
    error = refused({"type": "page", "userId": "u", "properties": {"url": 7}})
    assert error.problems == [("properties.url", "expected a string, got the number 7")]


# --- messageId -------------------------------------------------------------------------


def test_message_id_fallback_is_a_hash_stable_across_key_order() -> None:
    call = build_track(properties={"b": 1, "a": [1, {"y": 2, "x": 1}]})
    reordered = dict(reversed(call.items()))
    reordered["properties"] = {"a": [1, {"x": 1, "y": 2}], "b": 1}
    assert orjson.dumps(call) != orjson.dumps(reordered)
    first, second = parse_one(call), parse_one(reordered)
    expected = hashlib.sha256(orjson.dumps(call, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert first.message_id == second.message_id == "sha256:" + expected


def test_message_id_fallback_differs_with_content() -> None:
    assert parse_one(build_track()).message_id != parse_one(build_track(event="x")).message_id


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "expected a non-empty string, got ''"),
        (12, "expected a non-empty string, got 12"),
        ("m" * 256, "is 256 characters, over the limit of 255"),
    ],
)
def test_bad_message_id(value: Any, message: str) -> None:
    assert refused(build_track(messageId=value)).problems == [("messageId", message)]


# --- timestamps ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2024-05-01T10:00:00Z", NOW),
        ("2024-05-01T12:00:00+02:00", NOW),
        ("2024-05-01T10:00:00.250Z", NOW + 0.25),
        ("2024-05-01T10:00:00", NOW),  # naive means UTC
        (NOW, NOW),
        (int(NOW), NOW),
        (int(NOW * 1000) + 500, NOW + 0.5),  # milliseconds
    ],
)
def test_timestamp_forms(value: Any, seconds: float) -> None:
    assert parse_one(build_track(timestamp=value)).timestamp == pytest.approx(seconds)


def test_timestamp_fallbacks() -> None:
    assert parse_one(build_track(originalTimestamp=NOW - 5, sentAt=NOW - 9)).timestamp == NOW - 5
    assert parse_one(build_track(sentAt=NOW - 9)).timestamp == NOW - 9
    assert parse_one(build_track()).timestamp == NOW
    [event] = parse({"sentAt": NOW - 20, "batch": [build_track()]})
    assert event.timestamp == NOW - 20  # within SKEW_TOLERANCE: sentAt is taken as it is


def test_a_clients_clock_is_corrected_by_its_sent_at() -> None:
    """A client whose clock is an hour behind: its times move by the hour it is off."""
    hour = 3600.0
    batch = {"sentAt": NOW - hour, "batch": [build_track(timestamp=NOW - hour - 5)]}
    [event] = parse(batch)
    assert event.timestamp == NOW - 5
    ahead = build_track(originalTimestamp=NOW + hour - 9, sentAt=NOW + hour)
    assert parse_one(ahead).timestamp == NOW - 9
    [only_sent] = parse({"sentAt": NOW - hour, "batch": [build_track()]})
    assert only_sent.timestamp == NOW  # sent "an hour ago" by a clock an hour slow: now


def test_a_relayed_call_keeps_its_corrected_timestamp() -> None:
    """Segment's or RudderStack's webhook: receivedAt is theirs, and timestamp is corrected
    already; originalTimestamp alone is corrected by receivedAt - sentAt, as they do."""
    relayed = build_track(
        timestamp=NOW - 600, originalTimestamp=NOW - 4200, sentAt=NOW - 3590, receivedAt=NOW - 590
    )
    assert parse_one(relayed).timestamp == NOW - 600  # delivered 10 minutes late: unchanged
    original_only = build_track(originalTimestamp=NOW - 4200, sentAt=NOW - 3590, receivedAt=NOW)
    assert parse_one(original_only).timestamp == NOW - 610
    assert parse_one(build_track(receivedAt=NOW - 30)).timestamp == NOW - 30


def test_far_future_times_are_clamped_to_the_receipt() -> None:
    body = orjson.dumps({"batch": [
        build_track(timestamp=NOW + 86_400), build_track(timestamp=NOW + 30, userId="u2"),
    ]})  # fmt: skip
    parsed = parse_doc(orjson.loads(body), body=body, now=NOW)
    assert [e.timestamp for e in parsed.events] == [NOW, NOW + 30]  # 30 s: within tolerance
    assert parsed.clamped == 1


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"timestamp": "yesterday"}, "batch[0].timestamp", "not an ISO 8601 time: 'yesterday'"),
        (
            {"originalTimestamp": -5},
            "batch[0].originalTimestamp",
            "not a unix time in seconds or milliseconds: -5",
        ),
        (
            {"sentAt": [2024]},
            "batch[0].sentAt",
            "expected an ISO 8601 time or unix seconds, got a list",
        ),
        (
            {"timestamp": True},
            "batch[0].timestamp",
            "expected an ISO 8601 time or unix seconds, got true",
        ),
    ],
)
def test_bad_timestamps_name_the_field(fields: dict[str, Any], field: str, message: str) -> None:
    error = refused({"batch": [build_track(**fields)]})
    assert error.problems == [(field, message)]
    assert str(error) == f"{field}: {message}"


def test_bad_batch_sent_at() -> None:
    error = refused({"sentAt": "soon", "batch": [build_track()]})
    assert error.problems == [("sentAt", "not an ISO 8601 time: 'soon'")]


# ISO 8601 offsets are whole minutes (hypothesis would also try seconds and microseconds).
_offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=_offsets,
    )
)
def test_iso_timestamps_round_trip(when: datetime) -> None:
    event = parse_one(build_track(timestamp=when.isoformat()), now=END_OF_TIME)
    assert event.timestamp == when.timestamp()
    # a float has ~16 digits: by the year 9999 that is tens of microseconds
    assert abs(datetime.fromtimestamp(event.timestamp, UTC) - when) < timedelta(milliseconds=1)


@given(st.floats(min_value=0, max_value=1e11, allow_nan=False))
def test_unix_seconds_round_trip(seconds: float) -> None:
    assert parse_one(build_track(timestamp=seconds), now=END_OF_TIME).timestamp == seconds


# --- size limits ---------------------------------------------------------------------


def test_body_over_the_limit() -> None:
    body = orjson.dumps(build_track(properties={"pad": "x" * 100}))
    error = refused(body, max_body_bytes=50)
    assert error.status == 413
    assert error.problems == [("", f"body is {len(body)} bytes, over the limit of 50")]


def test_event_over_the_limit_names_its_path() -> None:
    big = build_track(properties={"pad": "x" * 400})
    size = len(orjson.dumps(big))
    error = refused({"batch": [build_track(), big, build_track(userId=None)]}, max_event_bytes=300)
    assert error.status == 413  # any size problem makes it 413
    assert error.problems == [
        ("batch[1]", f"call is {size} bytes, over the limit of 300"),
        ("batch[2].userId", "missing identity: give userId, anonymousId or traits.email"),
    ]


def test_single_call_over_the_limit() -> None:
    error = refused(build_track(properties={"pad": "x" * 400}), max_event_bytes=300)
    assert error.status == 413
    assert error.problems[0][0] == ""


def test_batch_over_the_item_limit() -> None:
    error = refused({"batch": [{}] * (MAX_BATCH_ITEMS + 1)})
    assert error.status == 413
    assert error.problems == [
        ("batch", f"batch has {MAX_BATCH_ITEMS + 1} calls, over the limit of {MAX_BATCH_ITEMS}")
    ]


# --- batches and body shape ----------------------------------------------------------


def test_batch_returns_events_in_order() -> None:
    doc = {"batch": [build_track(messageId=f"m{i}") for i in range(5)], "context": {}}
    assert [e.message_id for e in parse(doc)] == [f"m{i}" for i in range(5)]


def test_batch_collects_every_problem_and_returns_nothing() -> None:
    error = refused(
        {
            "batch": [
                build_track(),
                build_track(timestamp="yesterday", properties=[1]),
                "not a call",
                {"type": "identify", "traits": {"email": "bad"}},
            ]
        }
    )
    assert error.status == 400
    assert error.problems == [
        ("batch[1].timestamp", "not an ISO 8601 time: 'yesterday'"),
        ("batch[1].properties", "expected an object, got a list"),
        ("batch[2]", "expected a call object, got a string"),
        ("batch[3].traits.email", "not an email address: 'bad'"),
    ]
    assert error.to_json() == {
        "error": "not an ISO 8601 time: 'yesterday'",
        "field": "batch[1].timestamp",
        "errors": [{"field": f, "message": m} for f, m in error.problems],
    }


def test_problems_stop_at_the_limit() -> None:
    error = refused({"batch": [build_track(userId=None)] * (MAX_PROBLEMS + 10)})
    assert len(error.problems) == MAX_PROBLEMS + 1
    assert error.problems[-1] == (
        "",
        f"stopped after {MAX_PROBLEMS} problems: fix these and resend",
    )
    assert error.problems[MAX_PROBLEMS - 1][0] == f"batch[{MAX_PROBLEMS - 1}].userId"


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'{"type": "track",', "invalid JSON: the body ends early, at line 1, column 18"),
        (b"", "invalid JSON: the body is empty"),
        (b'{"type": nul}', "invalid JSON at line 1, column 10: unexpected 'nul}'"),
        (b"yesterday", "invalid JSON at line 1, column 1: unexpected 'yesterday'"),
    ],
)
def test_invalid_json_is_told_in_plain_words(body: bytes, said: str) -> None:
    error = refused(body)
    assert error.status == 400
    [(field, message)] = error.problems
    assert field == ""
    assert message.startswith(said)
    assert "expected 'null'" not in message  # the parser's words, not the project's


def test_top_level_array_is_a_batch() -> None:
    """Segment's batched webhook destination posts a bare array of calls."""
    first, second = parse([build_track(), build_track(userId="u2")])
    assert (first.user_id, second.user_id) == ("u1", "u2")
    error = refused([build_track(), build_track(timestamp="soon")])
    assert error.problems == [("batch[1].timestamp", "not an ISO 8601 time: 'soon'")]
    assert refused([]).problems == [("batch", "batch is empty: send at least one call")]


def test_other_top_level_values_are_refused() -> None:
    error = refused("track")
    assert error.problems == [
        ("", 'expected a JSON object (one call, or {"batch": [...]}), got a string')
    ]


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ([], "batch is empty: send at least one call"),
        ({}, "expected a list of calls, got an object"),
    ],
)
def test_batch_must_be_a_non_empty_list(batch: Any, message: str) -> None:
    error = refused({"batch": batch})
    assert error.problems == [("batch", message)]
    assert error.status == 400


def test_batch_context_must_be_an_object() -> None:
    error = refused({"context": "web", "batch": [build_track()]})
    assert error.problems == [("context", "expected an object, got a string")]


def test_traits_and_properties_must_be_objects() -> None:
    error = refused({"type": "identify", "userId": "u", "traits": "vip"})
    assert error.problems == [("traits", "expected an object, got a string")]


def test_input_error_needs_a_problem() -> None:
    with pytest.raises(ValueError, match="at least one problem"):
        InputError(400, [])


# --- what no database column should hold ----------------------------------------------


def _nested(depth: int) -> Any:
    """``depth`` objects, one inside the other: {"a": {"a": … 1}}."""
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def test_nesting_up_to_the_limit_is_accepted() -> None:
    # the call is level 1 and properties level 2, so 63 more objects reach MAX_DEPTH
    assert parse_one(build_track(properties=_nested(MAX_DEPTH - 1)))


def _tree(depth: int, wide: list[int]) -> Any:
    """Lists and objects nested to ``depth``, with side branches of the depths in ``wide``."""
    value: Any = "x"
    for level in range(depth):
        branches: list[Any] = [_nested(w) for w in wide if w < level]
        value = {"k": value, "side": branches} if level % 2 else [value, *branches]
    return value


@given(st.integers(0, MAX_DEPTH + 3), st.lists(st.integers(0, MAX_DEPTH + 3), max_size=3))
def test_the_quick_depth_check_agrees_with_the_walk_that_names_the_field(
    depth: int, wide: list[int]
) -> None:
    tree = _tree(depth, wide)
    assert _deeper_than(tree, MAX_DEPTH) == (first_tree_problem(tree, nul=False) is not None)


def test_the_bracket_count_shortcut_holds_at_the_limit() -> None:
    # Under MAX_DEPTH brackets in all, the body is shallow without walking it; one past is not.
    assert parse_one(build_track(properties=_nested(MAX_DEPTH - 1)))
    body = orjson.dumps(build_track(properties=_nested(MAX_DEPTH)))
    [(field, message)] = refused(body).problems
    assert message == f"nested deeper than {MAX_DEPTH} levels"
    assert field.startswith("properties.a")


@pytest.mark.parametrize("depth", [MAX_DEPTH, 300, 1000])
def test_deeper_nesting_is_refused_with_its_path(depth: int) -> None:
    body = b'{"batch": [' + orjson.dumps(build_track())[:-1] + b', "properties": '
    body += b'{"a":' * depth + b"1" + b"}" * depth + b"}]}"  # orjson.dumps stops at 254
    error = refused(body)
    [(field, message)] = error.problems
    assert field.startswith("batch[0].properties.a.a.a")
    assert message == f"nested deeper than {MAX_DEPTH} levels"
    assert error.status == 400


@pytest.mark.parametrize(
    ("call", "field", "words"),
    [
        (build_track(properties={"plan": "pro\x00"}), "batch[1].properties.plan", "contains a NUL"),
        (build_track(properties={"l": [1, ["\x00"]]}), "batch[1].properties.l[1][0]", "NUL"),
        (build_track(properties={"pl\x00an": 1}), "batch[1].properties.pl\x00an", "key contains"),
        (build_track(userId="u\x00"), "batch[1].userId", "NUL"),
        (build_track(messageId="m\x00"), "batch[1].messageId", "NUL"),
    ],
)
def test_a_nul_in_any_string_or_key_is_refused_with_its_field(
    call: dict[str, Any], field: str, words: str
) -> None:
    error = refused({"batch": [build_track(), call]})
    [(found, message)] = error.problems
    assert (found, words in message) == (field, True)


def test_a_nul_in_the_batch_context_is_refused() -> None:
    error = refused({"context": {"traits": {"email": "a\x00@b.co"}}, "batch": [build_track()]})
    assert error.problems[0][0] == "context.traits.email"


def test_an_escaped_backslash_before_u0000_is_not_a_nul() -> None:
    event = parse_one(build_track(properties={"path": "C:\\u0000"}))
    assert event.properties["path"] == "C:\\u0000"


@pytest.mark.parametrize(
    "value",
    ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-00:01"],
)
def test_an_offset_past_the_years_1_to_9999_is_refused(value: str) -> None:
    [(field, message)] = refused({"batch": [build_track(timestamp=value)]}).problems
    assert field == "batch[0].timestamp"
    assert message.startswith("out of range")


def test_the_first_and_last_utc_seconds_are_accepted() -> None:
    last = parse_one(build_track(timestamp="9999-12-31T23:59:59Z"), now=END_OF_TIME)
    assert last.timestamp == END_OF_TIME
    assert parse_one(build_track(timestamp="0001-01-01T00:00:00Z")).timestamp == -62_135_596_800
