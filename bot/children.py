"""Helper processes started as plain ``python -c`` children: the ingest writer
(``bot.ingest.writer``) and the rescore's points helper (``bot.models.rescore_helper``).

Not ``multiprocessing``: its spawn would run the ``leadbot`` script again in the child (the
whole command line) and start a resource tracker beside it. A child here imports only its
own module. It talks to its parent over one socket, passed as a descriptor.
"""

from __future__ import annotations

import json
import socket
import sys


def child_argv(python: str, module: str, fd: int) -> list[str]:
    """The command line of a child running ``module.child_entry()``: the parent's import
    path (as JSON, so the child finds the same modules however the parent was started, and
    in the same order: a ``PYTHONPATH`` would come before the standard library), then the
    socket's descriptor as the child's ``sys.argv[1]``."""
    code = (
        "import json, sys; sys.path[:] = json.loads(sys.argv[2]); "
        f"from {module} import child_entry; child_entry()"
    )
    return [python, "-c", code, str(fd), json.dumps(sys.path)]


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    """Exactly ``size`` bytes from a blocking socket; EOFError when the other side closed
    it first."""
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(min(size - len(data), 1 << 20))
        if not chunk:
            raise EOFError("the other process closed the socket")
        data += chunk
    return bytes(data)
