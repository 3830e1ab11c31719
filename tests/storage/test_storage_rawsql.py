"""The ingest hot path's own value conversions (``storage.rawsql``) write what SQLAlchemy's
types write and read back, so ORM reads and raw writes agree."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from storage.rawsql import _sqlite_time, time_out

# From 1900 to 2200 (a backfill may carry old times), any fraction a float holds there.
TIMES = st.floats(min_value=-2_208_988_800.0, max_value=7_258_118_400.0, allow_nan=False)


@given(TIMES)
def test_a_time_is_written_as_datetime_writes_it(ts: float) -> None:
    expected = datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)
    assert _sqlite_time(ts) == expected.isoformat(sep=" ", timespec="microseconds")


@given(TIMES)
def test_a_written_time_reads_back_to_the_microsecond(ts: float) -> None:
    assert abs((time_out(_sqlite_time(ts)) or 0.0) - ts) <= 0.5e-6 + 1e-9 * abs(ts)


def test_a_fraction_that_rounds_up_to_a_whole_second_carries_into_it() -> None:
    assert _sqlite_time(1_700_000_000.9999996) == "2023-11-14 22:13:21.000000"
    assert _sqlite_time(59.9999999) == "1970-01-01 00:01:00.000000"
