"""The one door to Pyro4: servers, connections, the name server, keys, limits, TLS and names.

No module outside this package imports Pyro4 or touches a ``_pyro`` name
(``tests/test_architecture.py`` checks it), so a move to Pyro5 is a change here only. One module
per concern: ``names`` (run ids, dotted names, addresses), ``wire`` (framing, the handshake
tokens, keys, limits), ``party`` (:class:`Party`: the secret, TLS and timeout each role makes
once and hands to every server and connection), ``server`` (our loop over Pyro's daemon) and
``client`` (the proxy, connections, the name server's client). What every server and
connection guarantees is stated once, with the test of each guarantee, in docs/security.md and
docs/architecture.md ("The servers: our loop, Pyro's messages").
"""
from .client import Connection, NameServerClient, remote_call
from .names import (DEFAULT_NAMESERVER_PORT, check_run_id, dispatcher_name,
                    local_address_towards, parse_worker_name, worker_name, worker_prefix)
from .party import Party, configure_tls
from .server import Server, caller_address, start_nameserver
from .wire import encoded_size, expose, oneway

__all__ = ["Server", "Connection", "NameServerClient", "Party", "start_nameserver",
           "remote_call", "expose", "oneway", "configure_tls", "encoded_size", "check_run_id",
           "dispatcher_name", "worker_prefix", "worker_name", "parse_worker_name",
           "local_address_towards", "caller_address", "DEFAULT_NAMESERVER_PORT"]
