"""The address of the client behind a request, honouring a proxy's header only when the proxy is trusted.

The TCP peer is the client unless it is in ENCHANT_TRUSTED_PROXIES. Then ENCHANT_CLIENT_IP_HEADER
(X-Forwarded-For by default) is read right to left, skipping the trusted proxies each hop appended: the
first address not trusted is the client. Anything a client writes into that header itself sits left of
what the proxies append, so a forged header gains nothing; a header sent straight to the API by an
untrusted client is ignored altogether.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_address(
    peer: str | None,
    headers: Mapping[str, str],
    trusted: Iterable[Network | str],
    header: str = "X-Forwarded-For",
) -> str | None:
    """The client's IP address as text, or None when the peer is not an IP (a test client, a socket)."""
    networks = [ipaddress.ip_network(n, strict=False) if isinstance(n, str) else n for n in trusted]
    peer_ip = _ip(peer)
    if peer_ip is None or not _trusted(peer_ip, networks):
        return str(peer_ip) if peer_ip is not None else None
    parsed = [_ip(part) for part in headers.get(header, "").split(",") if part.strip()]
    hops = [hop for hop in parsed if hop is not None]
    if not hops or len(hops) < len(parsed):  # a malformed header proves nothing: the peer it is
        return str(peer_ip)
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return str(hop)
    return str(hops[0])  # every hop is a trusted proxy: the first one is as far as we can see


def _trusted(ip: Address, networks: list[Network]) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


def _ip(text: str | None) -> Address | None:
    if not text:
        return None
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    return ip.ipv4_mapped or ip if isinstance(ip, ipaddress.IPv6Address) else ip
