"""ZeroMQ sockets set up as jobq's peers set them up (PROTOCOL.md 3.3, 9.1)."""

from __future__ import annotations

from typing import TypeVar

import zmq

from ._protocol import MAX_FRAME_BYTES
from .curve import CurveKeys

S = TypeVar("S", bound=zmq.Socket)

# How many messages ZeroMQ may hold for us before we read them. It counts
# messages, not bytes, and a frame may be 2 MiB, so a broker that floods us
# (hostile, or broken) costs at most HWM x 2 MiB here. None of these drops
# anything a peer needs: a DEALER whose queue is full stops reading its TCP
# connection, so the broker holds the rest (and its own limits apply,
# PROTOCOL.md 11); a SUB's lost event is a gap the watch reads with STATUS.

#: A client's answers: the sync client has one request in flight (and its
#: resends), the async one reads answers as they come. At most 128 MiB.
CLIENT_HWM = 64
#: A watch's events, for one job (a few kB each from a sound broker): an
#: event lost to a full queue shows as a version gap or a silence, and the
#: watch takes a STATUS (10.2). At most 64 MiB.
EVENT_HWM = 32
#: A worker's JOBs, ACKs, CANCEL_JOBs and heartbeats: its loop reads 64 a
#: turn; a burst beyond that waits in TCP. At most 128 MiB.
WORKER_HWM = 64
#: What we send: our own requests and results, which wait only while the
#: broker does not read (results are kept for resending anyway).
SEND_HWM = 10_000


def connect(
    sock: S,
    endpoint: str,
    curve: CurveKeys | None,
    *,
    routing_id: bytes | None = None,
    subscribe: bytes | None = None,
    receive_hwm: int = CLIENT_HWM,
) -> S:
    """Set sock's options and connect it: frames of at most 2 MiB, no linger
    on close, jobq's high-water marks (``receive_hwm`` for what it receives;
    EVENT_HWM for a SUB), CURVE keys if given."""
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, SEND_HWM)
    sock.setsockopt(zmq.RCVHWM, EVENT_HWM if subscribe is not None else receive_hwm)
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
