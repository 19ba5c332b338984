"""ZeroMQ sockets set up as jobq's peers set them up (PROTOCOL.md 3.3, 9.1)."""

from __future__ import annotations

from typing import TypeVar

import zmq

from ._protocol import MAX_FRAME_BYTES
from .curve import CurveKeys

S = TypeVar("S", bound=zmq.Socket)

#: The subscriber's queue: plenty, so a slow watcher loses no event it needs.
EVENT_HWM = 100_000


def connect(
    sock: S,
    endpoint: str,
    curve: CurveKeys | None,
    *,
    routing_id: bytes | None = None,
    subscribe: bytes | None = None,
) -> S:
    """Set sock's options and connect it: frames of at most 2 MiB, no linger
    on close, jobq's high-water marks, CURVE keys if given."""
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 10_000)
    sock.setsockopt(zmq.RCVHWM, EVENT_HWM if subscribe is not None else 10_000)
    if curve is not None:
        curve.apply(sock)
    if routing_id is not None:
        sock.setsockopt(zmq.ROUTING_ID, routing_id)
    if subscribe is not None:
        sock.setsockopt(zmq.SUBSCRIBE, subscribe)
    try:
        sock.connect(endpoint)
    except zmq.ZMQError as exc:
        sock.close(linger=0)
        raise ValueError(f"cannot connect to {endpoint!r}: {exc}") from None
    return sock
