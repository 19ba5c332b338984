"""CURVE keys for a broker started with ``--keys`` (PROTOCOL.md section 13)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import zmq

__all__ = ["CurveKeys"]

_Z85_KEY = re.compile(r"[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}\Z")
_ENTRY = re.compile(r"""\s+(public-key|secret-key)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s#]*))""")


@dataclass(frozen=True)
class CurveKeys:
    """This peer's key pair and the broker's public key, each 40 characters
    of Z85 text (as ``jobq keygen`` prints them)."""

    public_key: str
    secret_key: str
    server_key: str

    def __post_init__(self) -> None:
        for name in ("public_key", "secret_key", "server_key"):
            if not _Z85_KEY.match(getattr(self, name)):
                raise ValueError(f"{name}: not a CURVE key (40 characters of Z85)")

    @classmethod
    def from_files(cls, cert: str | os.PathLike[str], broker_key: str | os.PathLike[str]) -> CurveKeys:
        """Keys from a secret certificate (``jobq keygen PATH`` writes
        ``PATH_secret``) and the broker's public key: its Z85 text, or the
        path of its public certificate."""
        public, secret = _read_certificate(Path(cert))
        if secret is None:
            raise ValueError(f"{cert}: no secret-key; give the secret certificate (PATH_secret)")
        server = str(broker_key)
        if not _Z85_KEY.match(server):
            server, _ = _read_certificate(Path(broker_key))
        return cls(public, secret, server)

    @classmethod
    def from_env(cls) -> CurveKeys | None:
        """Keys from ``JOBQ_CERT`` and ``JOBQ_BROKER_KEY``, as jobq's programs
        read them; None when neither is set."""
        cert, broker_key = os.environ.get("JOBQ_CERT"), os.environ.get("JOBQ_BROKER_KEY")
        if not cert and not broker_key:
            return None
        if not cert or not broker_key:
            raise ValueError("CURVE needs both JOBQ_CERT and JOBQ_BROKER_KEY")
        return cls.from_files(cert, broker_key)

    def apply(self, sock: zmq.Socket) -> None:
        """Make sock a CURVE client of the broker (before it connects)."""
        sock.curve_serverkey = self.server_key.encode()
        sock.curve_publickey = self.public_key.encode()
        sock.curve_secretkey = self.secret_key.encode()


def _read_certificate(path: Path) -> tuple[str, str | None]:
    """The public key and, if present, the secret key of a czmq certificate:
    the indented ``public-key`` and ``secret-key`` of its ``curve`` section."""
    keys: dict[str, str] = {}
    in_curve = False
    for line in path.read_text(errors="replace").splitlines():
        if line[:1] not in ("", " ", "\t", "#"):
            in_curve = line.strip() == "curve"
        elif in_curve and (m := _ENTRY.match(line)):
            keys[m.group(1)] = next(g for g in m.groups()[1:] if g is not None)
    public = keys.get("public-key", "")
    if not _Z85_KEY.match(public):
        raise ValueError(f"{path}: not a CURVE certificate (no public-key in a curve section)")
    return public, keys.get("secret-key")
