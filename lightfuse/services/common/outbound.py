"""Outbound calls to identity providers and webhooks: the SSRF allow-list and the timeout.

The issuer comes from configuration, but discovery hands us further URLs (token, userinfo, JWKS) that the
identity provider chooses; a compromised or mistyped issuer must not make the server call its own admin ports
or the cloud metadata service. So every request's host is resolved first and refused when any of its addresses
is not a public one (loopback, private, link-local, shared, reserved, multicast), unless the host or address
is allowed by Langfuse's variables: ``LANGFUSE_SSO_DISCOVERY_WHITELISTED_HOST`` (host names),
``..._IPS`` (addresses) and ``..._IP_SEGMENTS`` (CIDR ranges). Redirects are not followed (each hop would need
the same check, and no OIDC endpoint needs one). The timeout is ``AUTH_SSO_TIMEOUT`` (milliseconds; default 10 s).

The check resolves the name itself, so a DNS answer that changes between the check and the connection (DNS
rebinding) is not caught; an allow-list of the identity provider's address closes that where it matters.

Webhooks (services/automations) use the same policy with their own variables
(``LANGFUSE_WEBHOOK_WHITELISTED_{HOST,IPS,IP_SEGMENTS}``): ``env_prefix`` names them in error messages.

For calls whose host a user chooses, ``pinned_async_client`` (used for LLM providers) checks at connect time the
very addresses it then dials, which closes that gap. The same policy serves LLM connections with the
``LANGFUSE_LLM_CONNECTION_WHITELISTED_*`` variables (``env_prefix=LLM_VARIABLES``).
"""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx

DEFAULT_TIMEOUT_S = 10.0


class OutboundRefused(Exception):
    """The URL's host is not allowed (its reason is safe to show: it names only the host)."""


SSO_VARIABLES = "LANGFUSE_SSO_DISCOVERY_WHITELISTED"
LLM_VARIABLES = "LANGFUSE_LLM_CONNECTION_WHITELISTED"


def _networks(segments: Iterable[str], prefix: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for segment in segments:
        try:
            out.append(ipaddress.ip_network(segment, strict=False))
        except ValueError:
            raise ValueError(f"{prefix}_IP_SEGMENTS: {segment!r} is not a CIDR range") from None
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
        env_prefix: str = "LANGFUSE_SSO_DISCOVERY_WHITELISTED",
    ) -> None:
        self.env_prefix = env_prefix
        self.hosts = frozenset(h.lower() for h in _csv(hosts))
        try:
            self.ips = frozenset(ipaddress.ip_address(ip) for ip in _csv(ips))
        except ValueError as exc:
            raise ValueError(f"{env_prefix}_IPS: {exc}") from None
        self.segments = _networks(_csv(segments), env_prefix)
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
            self.check_address(host, ip)

    def check_address(self, host: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
        if host.lower() in self.hosts or self._allowed_ip(ip):
            return
        raise OutboundRefused(
            f"the host {host} resolves to {ip}, a non-public address; allow it with "
            f"{self.env_prefix}_HOST, _IPS or _IP_SEGMENTS"
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


class _PinningBackend:
    """Resolves the host once, checks every address, and connects to a checked address.

    The check and the connection use the same DNS answer, so a name that resolves to a public address for the
    check and to 127.0.0.1 for the connection (DNS rebinding) cannot slip through. TLS still verifies the
    certificate against the host name: the connection pool passes the origin's name as SNI, not the address we
    dial. Duck-typed httpcore network backend, so it serves httpcore and httpcore2 alike.
    """

    def __init__(self, policy: OutboundPolicy, inner: Any) -> None:
        self.policy = policy
        self.inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> Any:
        try:
            addresses = [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError):
                raise OutboundRefused(f"the host {host} could not be resolved") from None
            addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        for ip in addresses:
            self.policy.check_address(host, ip)
        return await self.inner.connect_tcp(str(addresses[0]), port, timeout, local_address, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


_SSL_CONTEXTS: dict[str, Any] = {}


def _ssl_context(hx: Any) -> Any:
    # loading the CA bundle takes ~20 ms: once per process (an SSLContext is safe to share between clients)
    context = _SSL_CONTEXTS.get(hx.__name__)
    if context is None:
        context = _SSL_CONTEXTS[hx.__name__] = hx.create_ssl_context()
    return context


def pinned_async_client(policy: OutboundPolicy, client_cls: type = httpx.AsyncClient) -> Any:
    """An async HTTP client of ``client_cls`` (an httpx ``AsyncClient``, or the httpx2 one that newer provider
    SDKs are built on) whose connections pass ``policy`` at connect time, with the policy's timeout and no
    redirects. No proxy from the environment: a proxy would make the connection, out of the check's reach."""
    root = next(c for c in client_cls.__mro__ if c.__name__ == "AsyncClient").__module__.split(".")[0]
    hx = importlib.import_module(root)
    hc = importlib.import_module(root.replace("httpx", "httpcore"))
    ssl_context = _ssl_context(hx)
    transport = hx.AsyncHTTPTransport(verify=ssl_context, trust_env=False)
    # httpx builds its connection pool without a way to pass a network backend; swap in one that has it
    transport._pool = hc.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=_PinningBackend(policy, hc.AnyIOBackend()),
    )
    return client_cls(transport=transport, timeout=policy.timeout_s, follow_redirects=False, trust_env=False)
