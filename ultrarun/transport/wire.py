"""What travels: Pyro's message framing as our loop and proxy read it, the handshake tokens, the
signing key, the size limits and the process-wide Pyro4 settings they need (docs/security.md,
"The handshake"; docs/architecture.md, "The servers: our loop, Pyro's messages")."""
from __future__ import annotations

import marshal
import struct
import threading
from typing import Any

import Pyro4.message
import Pyro4.util

from ..errors import ConfigurationError
from ..settings import settings

# Importing ultrarun changes none of Pyro4's settings: serializer and Nagle are set per
# connection. Two process-wide ones are set when this package first serves or connects (Pyro4
# reads them from its global config only; docs/architecture.md, "The servers"): ONEWAY_THREADED
# off (our oneway methods only enqueue work) and MAX_MESSAGE_SIZE; with TLS also SSL.
_settings_lock = threading.Lock()

expose = Pyro4.expose
oneway = Pyro4.oneway

_Message = Pyro4.message.Message
_HEADER = _Message.header_size
_PREAUTH_LIMIT = 64 * 1024  # a handshake is a few hundred bytes
_CLIENT = "CNCE"  # annotation keys: 4 characters, Pyro's rule
_NONCE = "NONC"
_FRESH = "UNCE"
_COUNTER = struct.Struct("!Q")
_NONCE_SIZE = 16
_MARSHAL_ID = Pyro4.util.MarshalSerializer.serializer_id
_TOKEN_SIZE = 2 * _NONCE_SIZE + _COUNTER.size


# Every connection proves the secret afresh (docs/security.md, "The handshake"):
#   client -> server  MSG_CONNECT   CNCE = c                (c: the client's fresh nonce)
#   server -> client  MSG_CONNECTOK CNCE = c, NONC = s      (s: the server's fresh nonce)
#   client -> server  MSG_PING      UNCE = c + s + counter  (the proof, then every request)
#   server -> client  MSG_PING      UNCE = s + c + counter  (every answer: the mirrored token)
# Pyro's HMAC covers the data and every annotation value, so only a holder of the secret can
# write a message that carries both of this connection's nonces; the counter must grow, and
# answers mirror the token, so neither side takes a message recorded elsewhere, an old one, or
# its own sent back. A connection is authenticated when its proof arrives, not at MSG_CONNECT
# (which anyone who recorded one can send again). The HMAC is over the values concatenated
# (keys and header are not covered), so signed bytes can be re-cut between data and
# annotations: no signed message but this connection's own requests holds c + s + a counter
# in a row, and those are used up (test_transport.py fuzzes exactly this).
def _answer_token(request: bytes) -> bytes:
    """The token an answer to ``request`` carries: the two nonces swapped, the same counter."""
    return (request[_NONCE_SIZE:2 * _NONCE_SIZE] + request[:_NONCE_SIZE]
            + request[2 * _NONCE_SIZE:])


def _signing_key(secret: str) -> bytes:
    """Every message is signed: an unsigned connection would parse anyone's marshal data."""
    if not secret:
        raise ConfigurationError("a run secret is required: every message is signed with it")
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def encoded_size(value: Any) -> int:
    """Bytes ``value`` (plain data) takes on the wire, to check it against MAX_MESSAGE_SIZE
    before sending it."""
    return len(marshal.dumps(value))


def _buffer_budget() -> int:
    """Bytes one server buffers over all its connections (MAX_BUFFERED); one message of the
    largest size always fits."""
    return max(int(settings.MAX_BUFFERED), int(settings.MAX_MESSAGE_SIZE))


def _apply_limits() -> None:
    """The process-wide settings this module needs once it serves or connects (see the top of
    this module): proxies refuse answers over the size limit as well, and oneway calls run
    inline. A daemon that would expose unmarked methods (``PYRO_REQUIRE_EXPOSE=False``) is
    refused rather than changed back."""
    if not Pyro4.config.REQUIRE_EXPOSE:
        raise ConfigurationError("Pyro4's REQUIRE_EXPOSE is off (PYRO_REQUIRE_EXPOSE): every "
                                 "method of ultrarun's servers would be callable; unset it")
    Pyro4.config.MAX_MESSAGE_SIZE = int(settings.MAX_MESSAGE_SIZE)
    Pyro4.config.ONEWAY_THREADED = False
