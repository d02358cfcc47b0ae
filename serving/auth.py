"""API keys with roles: ``Authorization: Bearer <key>``, checked by an ASGI middleware.

Roles, each allowed what the ones before it are: **integration** (``/predict``,
``/predict_batch``, ``/tickets/...``), **agent** (also ``/feedback``, ``/feedback/stats``,
``/console/api/...``), **admin** (everything, e.g. ``/models``). Probes, ``/metrics``, the API docs
and the console page itself stay open; any other path needs admin (a new route is closed until
listed here).

Keys are enforced once any key exists (or always, with ``NIGHTDESK_AUTH_REQUIRED=true``). The
service holds the hashes of the active keys in memory (``KeyRing``): a request costs one SHA-256
and a dict look-up. The ring reloads in the background every ``NIGHTDESK_AUTH_REFRESH_S`` seconds
and at once (at most once a second) when it meets an unknown key, so new keys work immediately and
revoked ones stop within the refresh interval. While the store is unreachable the last known keys
are used; if they were never loaded, protected paths answer 503 rather than guess.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

from store import ROLES, Store, StoreUnavailable
from store.keys import hash_token

logger = logging.getLogger("nightdesk.serving.auth")

OPEN_PATHS = frozenset({"/", "/healthz", "/livez", "/readyz", "/metrics", "/docs.json", "/favicon.ico"})
OPEN_PREFIXES = ("/static_content/",)
#: (path or path prefix, least role), first match wins.
ROUTE_ROLES: tuple[tuple[str, str], ...] = (
    ("/predict", "integration"),
    ("/predict_batch", "integration"),
    ("/tickets", "integration"),
    ("/feedback", "agent"),
    ("/console/api", "agent"),
    ("/console", "open"),  # the page and its static files; its data comes from /console/api
    ("/models", "admin"),
)
RANK = {role: rank for rank, role in enumerate(ROLES)}
#: Fewest seconds between two reloads caused by unknown keys (a flood of bad keys cannot flood the store).
MISS_RELOAD_S = 1.0


def required_role(path: str) -> str | None:
    """The least role a path needs; None when it is open."""
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return None
    for prefix, role in ROUTE_ROLES:
        if path == prefix or path.startswith(prefix + "/"):
            return None if role == "open" else role
    return "admin"


def allows(role: str, needed: str) -> bool:
    return RANK[role] >= RANK[needed]


class KeyRing:
    """The active keys' hashes and roles, cached from the store."""

    def __init__(self, store: Store, *, refresh_s: float = 10.0, required: bool = False):
        self.store = store
        self.refresh_s = refresh_s
        self.required = required
        self.miss_reload_s = MISS_RELOAD_S
        self._keys: dict[str, str] | None = None  # None: never loaded
        self._loaded_at = 0.0
        self._miss_reload_at = 0.0
        self._lock = threading.Lock()
        self._refreshing = False

    @property
    def loaded(self) -> bool:
        return self._keys is not None

    def reload(self) -> bool:
        """Read the keys from the store (blocking); False (keeping the old ones) when it is down."""
        with self._lock:
            try:
                self._keys = self.store.active_keys()
            except StoreUnavailable as error:
                logger.warning("could not reload API keys: %s", error)
                return False
            finally:
                self._loaded_at = time.monotonic()
            return True

    def enforced(self) -> bool | None:
        """Whether requests need a key; None when unknown (keys never loaded and not required)."""
        if self.required:
            return True
        return None if self._keys is None else bool(self._keys)

    def role_of(self, token: str) -> str | None:
        return (self._keys or {}).get(hash_token(token))

    def stale(self) -> bool:
        return time.monotonic() - self._loaded_at >= self.refresh_s

    def may_reload(self) -> bool:
        """Whether a request may trigger a reload now (at most one per ``miss_reload_s``)."""
        now = time.monotonic()
        if now - self._miss_reload_at < self.miss_reload_s:
            return False
        self._miss_reload_at = now
        return True

    async def refresh_in_background(self) -> None:
        """Start a reload in a thread when the keys are stale (the request does not wait for it)."""
        if self._refreshing or not self.stale():
            return
        self._refreshing = True

        def run():
            try:
                self.reload()
            finally:
                self._refreshing = False

        asyncio.get_running_loop().run_in_executor(None, run)


class ApiKeyAuth:
    """ASGI middleware: 401 without a valid key, 403 when the key's role is too low for the path.

    The key ring comes from the running service (``service.keyring``), found on first use.
    """

    def __init__(self, app, keyring: KeyRing | None = None):
        self.app = app
        self._keyring = keyring

    def keyring(self) -> KeyRing | None:
        if self._keyring is not None:
            return self._keyring
        import bentoml

        try:
            return getattr(bentoml.get_current_service(), "keyring", None)
        except Exception:  # the service is not instantiated yet
            return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or (needed := required_role(scope["path"])) is None:
            return await self.app(scope, receive, send)
        ring = self.keyring()
        if ring is None:
            return await self.app(scope, receive, send)
        await ring.refresh_in_background()
        token = _bearer_token(scope)
        role = ring.role_of(token) if token else None
        if token and role is None and ring.may_reload():  # perhaps a key created since the last reload
            await asyncio.to_thread(ring.reload)
            role = ring.role_of(token)
        enforced = ring.enforced()
        if enforced is None and ring.may_reload():  # keys never loaded (store down at start): try again
            await asyncio.to_thread(ring.reload)
            enforced, role = ring.enforced(), ring.role_of(token) if token else None
        if enforced is None:
            return await _refuse(send, 503, "API keys cannot be checked: the store is unavailable",
                                 {"retry-after": "5"})
        if not enforced:
            return await self.app(scope, receive, send)
        if token is None:
            return await _refuse(send, 401, "missing API key: send 'Authorization: Bearer <key>' "
                                            "(create one with `nightdesk keys create --role ROLE`)", _CHALLENGE)
        if token == "":
            return await _refuse(send, 401, "malformed Authorization header: expected 'Bearer <key>'", _CHALLENGE)
        if role is None:
            return await _refuse(send, 401, "unknown or revoked API key", _CHALLENGE)
        if not allows(role, needed):
            return await _refuse(send, 403, f"an {role} key may not use {scope['path']}: it needs the "
                                            f"{needed} role or higher")
        scope.setdefault("state", {})["role"] = role
        return await self.app(scope, receive, send)


_CHALLENGE = {"www-authenticate": 'Bearer realm="nightdesk"'}


def _bearer_token(scope) -> str | None:
    """The key of ``Authorization: Bearer <key>``; None without the header, "" when malformed."""
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else ""
    return None


async def _refuse(send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
