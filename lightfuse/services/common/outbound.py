"""Outbound calls to identity providers: the SSRF allow-list and the timeout.

The issuer comes from configuration, but discovery hands us further URLs (token, userinfo, JWKS) that the
identity provider chooses; a compromised or mistyped issuer must not make the server call its own admin ports
or the cloud metadata service. So every request's host is resolved first and refused when any of its addresses
is not a public one (loopback, private, link-local, shared, reserved, multicast), unless the host or address
is allowed by Langfuse's variables: ``LANGFUSE_SSO_DISCOVERY_WHITELISTED_HOST`` (host names),
``..._IPS`` (addresses) and ``..._IP_SEGMENTS`` (CIDR ranges). Redirects are not followed (each hop would need
the same check, and no OIDC endpoint needs one). The timeout is ``AUTH_SSO_TIMEOUT`` (milliseconds; default 10 s).

The check resolves the name itself, so a DNS answer that changes between the check and the connection (DNS
rebinding) is not caught; an allow-list of the identity provider's address closes that where it matters.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpx

DEFAULT_TIMEOUT_S = 10.0


class OutboundRefused(Exception):
    """The URL's host is not allowed (its reason is safe to show: it names only the host)."""


def _networks(segments: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for segment in segments:
        try:
            out.append(ipaddress.ip_network(segment, strict=False))
        except ValueError:
            raise ValueError(
                f"LANGFUSE_SSO_DISCOVERY_WHITELISTED_IP_SEGMENTS: {segment!r} is not a CIDR range"
            ) from None
    return out


def _csv(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


class OutboundPolicy:
    def __init__(
        self,
        hosts: str | None = None,
        ips: str | None = None,
        segments: str | None = None,
        timeout_ms: int | None = None,
    ) -> None:
        self.hosts = frozenset(h.lower() for h in _csv(hosts))
        try:
            self.ips = frozenset(ipaddress.ip_address(ip) for ip in _csv(ips))
        except ValueError as exc:
            raise ValueError(f"LANGFUSE_SSO_DISCOVERY_WHITELISTED_IPS: {exc}") from None
        self.segments = _networks(_csv(segments))
        self.timeout_s = timeout_ms / 1000 if timeout_ms else DEFAULT_TIMEOUT_S

    def _allowed_ip(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if ip in self.ips or any(ip in net for net in self.segments):
            return True
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return ip.is_global and not ip.is_multicast

    def check_url(self, url: str) -> None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            raise OutboundRefused(f"{url.split('?')[0]!r} is not an http(s) URL")
        if host in self.hosts:
            return
        try:
            literal = ipaddress.ip_address(host)
            addresses = [literal]
        except ValueError:
            try:
                infos = socket.getaddrinfo(
                    host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
                )
            except (socket.gaierror, UnicodeError):
                raise OutboundRefused(f"the host {host} could not be resolved") from None
            addresses = []
            for *_, sockaddr in infos:
                # IPv4/IPv6 give (address, port, ...); an answer of any other family is not one we can check
                if not isinstance(sockaddr[0], str):
                    raise OutboundRefused(f"the host {host} resolves to an address that is not IP") from None
                addresses.append(ipaddress.ip_address(sockaddr[0].split("%")[0]))
        for ip in addresses:
            if not self._allowed_ip(ip):
                raise OutboundRefused(
                    f"the host {host} resolves to {ip}, a non-public address; allow it with "
                    "LANGFUSE_SSO_DISCOVERY_WHITELISTED_HOST, _IPS or _IP_SEGMENTS"
                )

    def _hook(self, request: httpx.Request) -> None:
        self.check_url(str(request.url))

    def client_options(self) -> dict:
        """Keyword arguments for an httpx.Client (or Authlib's OAuth2Client, which is one)."""
        return {
            # a plain number: Authlib's client may be built on httpx or on its successor httpx2
            "timeout": self.timeout_s,
            "follow_redirects": False,
            "event_hooks": {"request": [self._hook]},
        }

    def client(self) -> httpx.Client:
        return httpx.Client(**self.client_options())
