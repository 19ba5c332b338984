"""JOBQ/1 without I/O: command codes, limits, bodies in and out.

Everything here follows docs/PROTOCOL.md; the section numbers in comments
point there. Bodies are built with ``rid`` first (8.1) and checked against
the limits of sections 5.1 and 11 before they are sent, so a request the
broker would refuse for its size or shape is refused here, with the same
error code, without a round trip.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import msgpack

from .errors import BadRequest, Error, ProtocolError, TooLarge, from_code
from .models import Job, JobSpec

SIGNATURE = b"JOBQ\x01"  # section 3.1


class Command(enum.IntEnum):
    """Command codes (section 4.1)."""

    ENQUEUE = 0x01
    STATUS = 0x02
    LIST = 0x03
    CANCEL = 0x04
    STATS = 0x05
    RETRY = 0x06
    ENQUEUE_BATCH = 0x07
    READY = 0x11
    HEARTBEAT = 0x12
    PROGRESS = 0x13
    COMPLETE = 0x14
    FAIL = 0x15
    JOB = 0x21
    CANCEL_JOB = 0x22
    DISCONNECT = 0x23
    ACK = 0x24
    REPLY = 0x41
    ERROR = 0x42

    @property
    def frame(self) -> bytes:
        return bytes((self.value,))


# --- limits (section 11) ----------------------------------------------------
MAX_FRAME_BYTES = 2 << 20
MAX_INPUT_BYTES = 256 << 10
MAX_OUTPUT_BYTES = 1 << 20
MAX_STR_BYTES = 1 << 20
MAX_MAP_DEPTH = 14  # input and output, the map counting 1
MAX_BATCH_MAP_DEPTH = 13  # an input inside ENQUEUE_BATCH sits one level deeper
MAX_CONTAINER = 65536
MAX_ELEMENTS = 262144
#: Entries in one REPLY: its job map may carry an input and an output of
#: MAX_ELEMENTS each (section 5.1). Every other body: MAX_ELEMENTS.
MAX_REPLY_ELEMENTS = 2 * MAX_ELEMENTS + 1024
#: A JOB body: its input (MAX_INPUT_BYTES at most, as the broker took it)
#: and a few short fields, with room for keys a newer broker may add (12).
MAX_JOB_BODY_BYTES = MAX_INPUT_BYTES + (64 << 10)
MAX_TYPE_LEN = 64
MAX_SHOP_LEN = 128
MAX_KEY_LEN = 255
MAX_MESSAGE_LEN = 1024
MAX_ERROR_LEN = 4096
MAX_WORKER_TYPES = 64
MAX_CAPACITY = 1024
MAX_HELD = 1024
MAX_LIST = 1000
MAX_BATCH = 1000
MIN_PRIORITY, MAX_PRIORITY = -1000, 1000
MAX_DELAY_MS = 31_622_400_000
MAX_ATTEMPTS = 100
DEFAULT_ATTEMPTS = 3
MAX_TIMEOUT_MS = 604_800_000
MAX_ATTEMPT_NUMBER = 2**32 - 1

STATES = ("pending", "running", "completed", "failed", "cancelled")
_JOB_ID = re.compile(r"[0-9a-f]{16}\Z")
_JOB_TYPE = re.compile(r"[a-z0-9_.\-]+\Z")
_SHOP_ID = re.compile(r"[A-Za-z0-9_.:\-]+\Z")


# --- checks -------------------------------------------------------------------


def check_job_id(value: object, what: str = "id") -> str:
    if not isinstance(value, str) or not _JOB_ID.match(value):
        raise BadRequest(f"field '{what}': {value!r} is not a job id (16 lowercase hex digits)")
    return value


def check_type(value: object, what: str = "type") -> str:
    return _check_token(value, what, _JOB_TYPE, MAX_TYPE_LEN, "[a-z0-9_.-]")


def check_shop(value: object, what: str = "shop_id") -> str:
    return _check_token(value, what, _SHOP_ID, MAX_SHOP_LEN, "[A-Za-z0-9_.:-]")


def _check_token(value: object, what: str, pattern: re.Pattern[str], limit: int, chars: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"field '{what}': expected a string, not {type(value).__name__}")
    if len(value.encode()) > limit:
        raise TooLarge(f"field '{what}': longer than {limit} bytes")
    if not pattern.match(value):
        raise BadRequest(f"field '{what}': use 1-{limit} of {chars}")
    return value


def check_int(value: object, what: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(f"field '{what}': expected an integer, not {type(value).__name__}")
    if not low <= value <= high:
        raise BadRequest(f"field '{what}': {value} is outside {low}..{high}")
    return value


def utf8(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise BadRequest(f"field '{what}': expected a string, not {type(value).__name__}")
    return value.encode("utf-8", "surrogateescape")


def clip(text: str, limit: int) -> str:
    """text cut to at most limit bytes of UTF-8, on a character boundary."""
    raw = text.encode("utf-8", "replace")
    return text if len(raw) <= limit else raw[:limit].decode("utf-8", "ignore")


def _too_long(s: str) -> bool:
    """True for a str of more than MAX_STR_BYTES bytes of UTF-8 (a str of
    fewer than a quarter as many characters never is)."""
    return len(s) > MAX_STR_BYTES // 4 and len(s.encode("utf-8", "surrogatepass")) > MAX_STR_BYTES


def _measure(value: Any, what: str, depth: int, max_depth: int) -> int:
    """Entries in value's containers (section 5.1); raises on a broken rule."""
    if isinstance(value, Mapping):
        entries: Iterable[Any] = value.values()
        for k in value:
            if not isinstance(k, str):
                raise BadRequest(f"field '{what}': map key {k!r} is not a string")
            if _too_long(k):
                raise TooLarge(f"field '{what}': a string longer than {MAX_STR_BYTES} bytes")
    elif isinstance(value, (list, tuple)):
        entries = value
    elif isinstance(value, str):
        if _too_long(value):
            raise TooLarge(f"field '{what}': a string longer than {MAX_STR_BYTES} bytes")
        return 0
    elif isinstance(value, (bytes, bytearray, memoryview)):
        if len(value) > MAX_STR_BYTES:
            raise TooLarge(f"field '{what}': a binary longer than {MAX_STR_BYTES} bytes")
        return 0
    elif isinstance(value, msgpack.ExtType):
        if len(value.data) > MAX_STR_BYTES:
            raise TooLarge(f"field '{what}': an ext longer than {MAX_STR_BYTES} bytes")
        return 0
    else:
        return 0
    if depth > max_depth:
        raise TooLarge(f"field '{what}': nested deeper than {max_depth} levels")
    if len(value) > MAX_CONTAINER:
        raise TooLarge(f"field '{what}': a container of more than {MAX_CONTAINER} entries")
    count = len(value)
    for item in entries:
        count += _measure(item, what, depth + 1, max_depth)
        if count > MAX_ELEMENTS:
            raise TooLarge(f"field '{what}': more than {MAX_ELEMENTS} entries in all")
    return count


@dataclass(frozen=True)
class PackedMap:
    """A map already encoded, with its entry count (for the body's total)."""

    data: bytes
    elements: int


def pack_map(value: Any, what: str, max_bytes: int, max_depth: int = MAX_MAP_DEPTH) -> PackedMap:
    """Check value as an ``input`` or ``output`` map and encode it."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise BadRequest(f"field '{what}': expected a map (dict), not {type(value).__name__}")
    elements = _measure(value, what, 1, max_depth)
    try:
        data = msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise BadRequest(f"field '{what}': cannot be encoded as msgpack ({exc})") from None
    if len(data) > max_bytes:
        raise TooLarge(f"field '{what}': {len(data)} bytes encoded, at most {max_bytes}")
    return PackedMap(data, elements)


# --- encoding ---------------------------------------------------------------


class Raw(bytes):
    """A value already encoded as msgpack, written as is."""


def _header(n: int, small: int, b16: int) -> bytes:
    if n < 16:
        return bytes((small | n,))
    if n < 0x10000:
        return bytes((b16,)) + n.to_bytes(2, "big")
    return bytes((b16 + 1,)) + n.to_bytes(4, "big")


def map_header(n: int) -> bytes:
    return _header(n, 0x80, 0xDE)


def array_header(n: int) -> bytes:
    return _header(n, 0x90, 0xDC)


def encode_map(fields: Mapping[str, Any]) -> bytes:
    """One msgpack map, keys in the given order; :class:`Raw` values as is."""
    packer = msgpack.Packer(use_bin_type=True)
    parts = [map_header(len(fields))]
    for key, value in fields.items():
        parts.append(packer.pack(key))
        parts.append(bytes(value) if isinstance(value, Raw) else packer.pack(value))
    return b"".join(parts)


def frames(cmd: Command, body: bytes) -> list[bytes]:
    if len(body) > MAX_FRAME_BYTES:
        raise TooLarge(f"request is {len(body)} bytes; a frame holds at most {MAX_FRAME_BYTES}")
    return [SIGNATURE, cmd.frame, body]


def enqueue_fields(spec: JobSpec, key: str | None, max_depth: int) -> tuple[dict[str, Any], int]:
    """ENQUEUE's fields for spec (8.2) in jobq's order, and their entry count.

    Like jobq's own encoder (14.1) every optional field is written, but for
    ``key`` when there is none.
    """
    check_type(spec.type)
    check_shop(spec.shop_id)
    packed = pack_map(spec.input, "input", MAX_INPUT_BYTES, max_depth)
    max_attempts = DEFAULT_ATTEMPTS if spec.max_attempts is None else spec.max_attempts
    fields: dict[str, Any] = {
        "type": spec.type,
        "shop_id": spec.shop_id,
        "input": Raw(packed.data),
        "priority": check_int(spec.priority, "priority", MIN_PRIORITY, MAX_PRIORITY),
        "delay": check_int(spec.delay_ms, "delay", 0, MAX_DELAY_MS),
        "max_attempts": check_int(max_attempts, "max_attempts", 1, MAX_ATTEMPTS),
        "timeout": check_int(spec.timeout_ms, "timeout", 0, MAX_TIMEOUT_MS),
    }
    if key is not None:
        raw = utf8(key, "key")
        if not raw:
            raise BadRequest("field 'key': empty (leave it out instead)")
        if len(raw) > MAX_KEY_LEN:
            raise TooLarge(f"field 'key': longer than {MAX_KEY_LEN} bytes")
        fields["key"] = key
    return fields, len(fields) + packed.elements


def job_spec(value: JobSpec | Mapping[str, Any]) -> JobSpec:
    """A JobSpec from itself or from a dict of its fields."""
    if isinstance(value, JobSpec):
        return value
    if isinstance(value, Mapping):
        try:
            return JobSpec(**value)
        except TypeError as exc:
            raise BadRequest(f"bad job: {exc}") from None
    raise BadRequest(f"a job is a JobSpec or a dict, not {type(value).__name__}")


def batch_jobs(specs: Sequence[JobSpec], keys: Sequence[str | None]) -> tuple[Raw, int]:
    """ENQUEUE_BATCH's ``jobs`` array (8.8) and its entry count."""
    if not 1 <= len(specs) <= MAX_BATCH:
        raise (TooLarge if specs else BadRequest)(f"field 'jobs': a batch holds 1 to {MAX_BATCH} jobs")
    parts, elements = [array_header(len(specs))], len(specs)
    for i, (spec, key) in enumerate(zip(specs, keys)):
        try:
            fields, n = enqueue_fields(spec, key, MAX_BATCH_MAP_DEPTH)
        except Error as exc:
            raise type(exc)(f"jobs[{i}]: {exc.message}") from None
        parts.append(encode_map(fields))
        elements += n
    if elements > MAX_ELEMENTS:
        raise TooLarge(f"field 'jobs': more than {MAX_ELEMENTS} entries in all")
    return Raw(b"".join(parts)), elements


def list_fields(
    shop: str | None, type: str | None, status: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    """LIST's fields (8.6)."""
    fields: dict[str, Any] = {"limit": check_int(limit, "limit", 1, MAX_LIST)}
    if shop is not None:
        fields["shop_id"] = check_shop(shop)
    if type is not None:
        fields["type"] = check_type(type)
    if status is not None:
        if str(status) not in STATES:
            raise BadRequest(f"field 'status': {status!r} is not one of {', '.join(STATES)}")
        fields["status"] = str(status)
    if cursor is not None:
        fields["cursor"] = check_job_id(cursor, "cursor")
    return fields


# --- decoding -----------------------------------------------------------------


# Bytes that follow a header byte of 0xc4..0xdf (section 5.1's walk): for
# a scalar, its data; for a str, bin, ext, array or map, its length field
# (ext: its length field and its type byte).
_FIXED = {0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8,
          0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17}  # fmt: skip
_SIZED = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}  # str, bin
_EXT = {0xC7: 1, 0xC8: 2, 0xC9: 4}
_ARRAY = {0xDC: 2, 0xDD: 4}
_MAP = {0xDE: 2, 0xDF: 4}


def count_entries(body: bytes, limit: int) -> int:
    """The entries (array items and map entries) body's containers declare
    in all, walking its headers without building any value; ProtocolError
    once they pass limit (section 5.1), or for a body cut short or holding
    0xc1. Counting what headers declare stops a hostile body early: one
    2 MiB body of empty arrays would otherwise cost msgpack ~140 MB."""
    end, pos, values, entries = len(body), 0, 1, 0
    while values:
        if pos >= end:
            raise ProtocolError("undecodable body (truncated)")
        b = body[pos]
        pos += 1
        values -= 1
        if b < 0x80 or b >= 0xE0 or b in (0xC0, 0xC2, 0xC3):  # fixint, nil, bool
            continue
        if b < 0xA0:  # fixmap, fixarray
            n = b & 0x0F
            entries += n
            values += 2 * n if b < 0x90 else n
        elif b < 0xC0:  # fixstr
            pos += b & 0x1F
        elif b in _FIXED:
            pos += _FIXED[b]
        elif b in _SIZED:
            width = _SIZED[b]
            pos += width + int.from_bytes(body[pos : pos + width], "big")
        elif b in _EXT:
            width = _EXT[b]
            pos += width + 1 + int.from_bytes(body[pos : pos + width], "big")
        elif b in _ARRAY or b in _MAP:
            width = _ARRAY.get(b) or _MAP[b]
            n = int.from_bytes(body[pos : pos + width], "big")
            pos += width
            entries += n
            values += n if b in _ARRAY else 2 * n
        else:
            raise ProtocolError("undecodable body (reserved byte 0xc1)")
        if entries > limit:
            raise ProtocolError(f"body holds more than {limit} entries in all")
    return entries


def unpack(body: bytes, max_entries: int = MAX_ELEMENTS) -> dict[str, Any]:
    """Decode one body: a map with string keys, within section 5.1's limits
    (at most max_entries entries in all). Free text that is not valid UTF-8
    is decoded with replacement (5.2). ProtocolError if it is not one."""
    if len(body) > max_entries:
        # Every entry takes a byte at least: only a longer body can hold
        # too many, and only then is it worth walking before decoding.
        count_entries(body, max_entries)
    try:
        value = msgpack.unpackb(
            body,
            raw=False,
            unicode_errors="replace",
            max_str_len=MAX_STR_BYTES,
            max_bin_len=MAX_STR_BYTES,
            max_ext_len=MAX_STR_BYTES,
            max_array_len=MAX_CONTAINER,
            max_map_len=MAX_CONTAINER,
        )
    except Exception as exc:  # msgpack raises several unrelated types
        raise ProtocolError(f"undecodable body ({exc})") from None
    if not isinstance(value, dict):
        raise ProtocolError("body is not a map")
    return value


@dataclass(frozen=True)
class Answer:
    """A REPLY or an ERROR from the client endpoint."""

    rid: int
    cmd: Command
    body: dict[str, Any]

    def result(self) -> dict[str, Any]:
        """The REPLY body, or the ERROR raised as its exception."""
        if self.cmd is Command.ERROR:
            code, message = self.body.get("code"), self.body.get("message")
            raise from_code(code if isinstance(code, str) else "internal", str(message or ""))
        return self.body


def parse_answer(msg: Sequence[bytes]) -> Answer | None:
    """An answer from the broker, or None for anything that is not one (it
    is skipped: a peer MUST NOT interpret a body under another version)."""
    if len(msg) != 3 or msg[0] != SIGNATURE or len(msg[1]) != 1:
        return None
    if msg[1][0] not in (Command.REPLY, Command.ERROR):
        return None
    try:
        body = unpack(msg[2], MAX_REPLY_ELEMENTS if msg[1][0] == Command.REPLY else MAX_ELEMENTS)
    except ProtocolError:
        return None
    rid = body.get("rid")
    if not isinstance(rid, int) or isinstance(rid, bool) or rid < 0:
        return None
    return Answer(rid, Command(msg[1][0]), body)


def parse_message(msg: Sequence[bytes]) -> tuple[int, dict[str, Any]] | None:
    """The command code and body of a message from the worker endpoint, or
    None for one that cannot be decoded (a worker drops it, 9.1), or a JOB
    larger than an input the broker takes could make it (8.2)."""
    if len(msg) != 3 or msg[0] != SIGNATURE or len(msg[1]) != 1:
        return None
    if msg[1][0] == Command.JOB and len(msg[2]) > MAX_JOB_BODY_BYTES:
        return None
    try:
        return msg[1][0], unpack(msg[2])
    except ProtocolError:
        return None


def parse_event(msg: Sequence[bytes], topic: bytes) -> Job | None:
    """The job state an event on topic carries, or None for anything else
    (section 3.2): a watcher skips what it cannot read, and its snapshots
    still come."""
    if len(msg) != 3 or msg[0] != topic or msg[1] != SIGNATURE:
        return None
    try:
        return Job.from_map(unpack(msg[2]))
    except ProtocolError:
        return None


def reply_field(body: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(key)
    if not isinstance(value, kind):
        raise ProtocolError(f"reply lacks a valid '{key}'")
    return value


def topic(shop_id: str, job_id: str) -> bytes:
    """The event topic of one job (section 10.1)."""
    return f"{shop_id}/{job_id}".encode()
