"""The fuzz corpus: malformed requests as data, one case per line of ``corpus/*.jsonl``.

A case is a JSON object:

- ``name``: what it is (the test id);
- the body, one of: ``body`` (any JSON value, sent as JSON), ``raw`` (text, sent as UTF-8),
  ``raw_b64`` (bytes), or ``base`` (a well-formed request of the endpoint, named by kind,
  that ``set`` {path: value} and ``unset`` [path] then change; paths are dotted, with
  ``[i]`` for list items: ``conversation.id``, ``actions[0].value``);
- ``nest`` (optional): ``{"path": "properties.x", "depth": 600}`` puts that many objects
  one inside the other at ``path`` (the body is serialised by hand, past what orjson or
  json can write);
- ``headers`` (optional): headers added or replaced after signing;
- ``sign`` (optional, default ``"ok"``): ``"none"`` (no signature headers), ``"bad"``
  (signed with another secret), ``"stale"`` (signed 10 minutes ago);
- ``expect``: a status (``400``) or a class (``"4xx"``, ``"2xx"``); ``field`` (optional):
  what the answer's ``field`` starts with;
- ``by: "aiohttp"`` (optional): aiohttp's HTTP parser answers it before any route or
  middleware runs (a deflate stream that ends early is only found at the message's end),
  with its own text body: still a 4xx that changes nothing, but not leadbot's JSON.

To grow it, append a line; ``test_corpus.py`` runs every line against the real app.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

CORPUS = Path(__file__).parent / "corpus"
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclass(frozen=True)
class Case:
    name: str
    spec: dict[str, Any] = field(repr=False)

    @property
    def expect(self) -> int | str:
        value: int | str = self.spec["expect"]
        return value

    @property
    def field(self) -> str | None:
        return self.spec.get("field")

    @property
    def by_aiohttp(self) -> bool:
        return self.spec.get("by") == "aiohttp"

    @property
    def sign(self) -> str:
        return str(self.spec.get("sign", "ok"))

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.spec.get("headers", {}))

    def matches(self, status: int) -> bool:
        expect = self.expect
        if isinstance(expect, int):
            return status == expect
        return f"{status // 100}xx" == expect

    def body(self, bases: dict[str, Any]) -> Any:
        """The JSON value to send (before any ``nest``), or bytes for raw bodies."""
        spec = self.spec
        if "raw" in spec:
            return spec["raw"].encode()
        if "raw_b64" in spec:
            return base64.b64decode(spec["raw_b64"])
        if "base" in spec:
            value = orjson.loads(orjson.dumps(bases[spec["base"]]))  # a deep copy
            for path, new in spec.get("set", {}).items():
                value = put(value, path, new)
            for path in spec.get("unset", []):
                value = put(value, path, _UNSET)
            return value
        return spec["body"]

    def encoded(self, value: Any) -> bytes:
        """``value`` as JSON bytes, with the ``nest`` spliced in when the case has one."""
        if isinstance(value, bytes):
            return value
        nest = self.spec.get("nest")
        if nest is None:
            return orjson.dumps(value)
        marker = "__NEST__"
        text = orjson.dumps(put(value, nest["path"], marker)).decode()
        depth = int(nest["depth"])
        return text.replace(f'"{marker}"', '{"a":' * depth + "1" + "}" * depth).encode()


_UNSET = object()


def put(value: Any, path: str, new: Any) -> Any:
    """``value`` with ``path`` set to ``new`` (or removed, for ``_UNSET``); missing
    objects on the way are created."""
    steps = [name if name else int(index) for name, index in _STEP.findall(path)]
    if not steps:
        return new
    here = value
    for step in steps[:-1]:
        nxt = here[step] if _has(here, step) else None
        if not isinstance(nxt, dict | list):
            nxt = {}
            here[step] = nxt
        here = nxt
    last = steps[-1]
    if new is _UNSET:
        if _has(here, last):
            del here[last]
    else:
        here[last] = new
    return value


def _has(container: Any, step: str | int) -> bool:
    if isinstance(container, dict):
        return step in container
    return isinstance(step, int) and 0 <= step < len(container)


def load(endpoint: str) -> list[Case]:
    """Every case of ``corpus/<endpoint>.jsonl``; blank lines and ``//`` lines are skipped."""
    cases = []
    path = CORPUS / f"{endpoint}.jsonl"
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        spec = orjson.loads(line)
        cases.append(Case(name=spec.get("name", f"line {number}"), spec=spec))
    return cases
