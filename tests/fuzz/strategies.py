"""Hypothesis strategies: well-formed requests of each endpoint, and mutations of them.

A mutation picks a place in a well-formed request (a field that is there, or a new one)
and sets it to an odd value (another JSON type, a NUL, an empty string, deep nesting, a
time past the year 9999, a huge number) or removes it; a few of them at once.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from bot.ingest.inbound import CALL_TYPES
from tests.fuzz.corpus import _UNSET, put

_MIN = datetime(1970, 1, 2, tzinfo=UTC)
_MAX = datetime(9999, 12, 30, tzinfo=UTC)
_NAMES = st.sampled_from(["a", "plan", "email", "path", "url", "id", "value", "x y", "é"])


def _json(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what orjson writes
        | st.floats(allow_nan=False, allow_infinity=False)
        | text
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_NAMES, inner, max_size=3),
        max_leaves=8,
    )


json_values = _json(st.text(max_size=12))
clean_values = _json(  # what a well-formed call may carry: any text but a NUL
    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12)
)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


_ODD = [
    "", "\x00", "a\x00b", " ", "9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00",
    "yesterday", 2**64 - 1, -1, 1e308, -1e308, 0, [], {}, [None], {"": None},
    "http://", "not a url", "javascript:alert(1)", "x" * 300,
]  # fmt: skip
odd_values = st.one_of(
    json_values,
    st.sampled_from(_ODD),
    st.integers(min_value=60, max_value=150).map(_nested),  # orjson writes up to 254
)


def paths(value: Any, prefix: str = "", depth: int = 0) -> list[str]:
    """Every place in ``value`` (object keys and list items) down to 8 levels, in
    ``put``'s path syntax; not inside a deep nest an earlier mutation put there, which
    would compound past what orjson can write."""
    out: list[str] = []
    if depth >= 8:
        return out
    if isinstance(value, dict):
        items = [(f"{prefix}.{k}" if prefix else k, v) for k, v in value.items()
                 if k.isidentifier()]  # fmt: skip
    elif isinstance(value, list):
        items = [(f"{prefix}[{i}]", v) for i, v in enumerate(value)]
    else:
        return out
    for path, child in items:
        out.append(path)
        out.extend(paths(child, path, depth + 1))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """``base`` with one to three places set to odd values or removed."""
    value = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        places = paths(value)
        if not places or draw(st.integers(0, 9)) == 0:
            places = [*places, draw(_NAMES.filter(str.isidentifier))]
        path = draw(st.sampled_from(places))
        if draw(st.integers(0, 4)) == 0:
            value = put(value, path, _UNSET)
        else:
            value = put(value, path, copy.deepcopy(draw(odd_values)))  # _ODD's [] stays empty
    return value


# --- Segment calls ---------------------------------------------------------------------


def _iso(when: datetime) -> str:
    return when.isoformat()


_utc_times = st.datetimes(
    min_value=_MIN.replace(tzinfo=None), max_value=_MAX.replace(tzinfo=None), timezones=st.just(UTC)
)
times = st.one_of(_utc_times.map(_iso), st.floats(min_value=0, max_value=4e9))
_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
# Property names the parser gives a meaning (email, url, path) are set on purpose below.
_KEYS = st.sampled_from(["a", "plan", "id", "value", "x y", "é"])
_props = st.dictionaries(_KEYS, clean_values, max_size=4)


@st.composite
def segment_calls(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed call of any type, as a source sends it."""
    kind = draw(st.sampled_from(CALL_TYPES))
    call: dict[str, Any] = {"type": kind, "messageId": "m-" + draw(_ids),
                            "timestamp": draw(times)}  # fmt: skip
    user = draw(_ids)
    if kind == "alias":
        call.update(userId=user, previousId=draw(_ids))
    elif draw(st.booleans()):
        call["userId"] = user
    else:
        call["anonymousId"] = user
    if kind in ("identify", "group"):
        traits = draw(_props)
        traits["email"] = f"{user}@example.com"
        call["traits"] = traits
    if kind == "group":
        call["groupId"] = draw(_ids)
    if kind == "track":
        call["event"] = draw(st.sampled_from(["Demo Requested", "Signed Up", "Order Completed"]))
    if kind in ("track", "page", "screen"):
        props = draw(_props)
        props["path"] = draw(st.sampled_from(["/pricing", "/docs", "/"]))
        props.pop("url", None)  # a random string is not a URL
        if call.get("event") == "Order Completed":  # a well-formed order (bot.ingest.order_fields)
            props.update(order_id=draw(_ids), revenue=draw(st.floats(0, 1e6)))
        call["properties"] = props
    return call


well_formed_bodies = st.one_of(
    segment_calls(),
    st.lists(segment_calls(), min_size=1, max_size=4).map(lambda calls: {"batch": calls}),
)
mutated_bodies = well_formed_bodies.flatmap(mutated)
