"""Who is calling from where: the client's address behind the platform's own (trusted) proxies."""

from __future__ import annotations

import ipaddress

Networks = list[ipaddress.IPv4Network | ipaddress.IPv6Network]


def _trusted(address: str, trusted: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def forwarded_client(peer: str, forwarded_for: list[str], trusted: Networks) -> str:
    """The client's address: the peer, unless the peer is a trusted proxy — then the ``X-Forwarded-For`` hops are
    read from the right (the ones our own proxies appended) and the first that is not a trusted proxy is the client.
    A hop that is not an address ends the walk (nothing left of it can be believed)."""
    client = peer
    if not _trusted(peer, trusted):
        return client
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break
        client = hop
        if not _trusted(hop, trusted):
            break
    return client
