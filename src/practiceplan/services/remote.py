"""The sync remote of this database and the token to reach it: `remote set|show|unset`, `login`, `logout`,
`auth status`.

The remote URL and this installation's device id live in the database's ``meta`` table (``sync.remote``,
``sync.device_id``): sync state is per database. The token lives outside the database, per remote URL
(sync/credentials.py: ``PRACTICEPLAN_TOKEN``, the OS keyring, or a 0600 file), and is never returned by any
method here, only where it is kept. The HTTP client (and httpx) is imported only when a method talks to the
server.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from practiceplan.errors import NotAuthorisedError, UsageError
from practiceplan.sync import credentials

if TYPE_CHECKING:
    from practiceplan.services.session import Session
    from practiceplan.sync.client import Client

REMOTE_KEY = "sync.remote"
DEVICE_KEY = "sync.device_id"
SET_HINT = "set one first: practiceplan remote set URL"


def new_device_id() -> str:
    """``dev_`` and 16 URL-safe random characters (as Mirubato's web client makes them)."""
    return "dev_" + secrets.token_urlsafe(12)


class Remote:
    def __init__(self, session: Session) -> None:
        self.s = session

    # ------------------------------------------------------------------ the remote and the device

    def url(self) -> str | None:
        """The remote URL of this database, or None."""
        return self.s.store.meta_get(REMOTE_KEY)

    def require_url(self) -> str:
        """The remote URL, or UsageError (exit 2) saying how to set one."""
        url = self.url()
        if not url:
            raise UsageError("no sync remote is set for this database", hint=SET_HINT)
        return url

    def device_id(self) -> str:
        """This database's device id, created on first need (one write) and stable afterwards."""
        store = self.s.store
        found = store.meta_get(DEVICE_KEY)
        if found:
            return found
        with store.write():
            found = store.meta_get(DEVICE_KEY)  # another process may have made it meanwhile
            if not found:
                found = new_device_id()
                store.meta_set(DEVICE_KEY, found)
        return found

    def set(self, url: str) -> dict[str, Any]:
        """Make ``url`` (checked: http(s), HTTPS unless loopback) the remote, in one transaction (the device id
        is made in it too when missing). ``changed`` says a different remote was set before: the next sync then
        starts afresh against the new server."""
        from practiceplan.sync.client import check_url

        checked = check_url(url)
        store = self.s.store
        with store.write():
            previous = store.meta_get(REMOTE_KEY)
            store.meta_set(REMOTE_KEY, checked)
            device = store.meta_get(DEVICE_KEY)
            if not device:
                device = new_device_id()
                store.meta_set(DEVICE_KEY, device)
        changed = bool(previous) and previous != checked
        if changed:
            self.s.notices.append(f"the remote was {previous}: the next sync starts afresh against {checked}")
        return {"remote": checked, "previous": previous, "changed": changed,
                "deviceId": device, "token": self._token_info(checked)}

    def unset(self) -> dict[str, Any]:
        """Forget the remote (the device id and any stored token stay). ``previous`` is None when none was set."""
        store = self.s.store
        with store.write():
            previous = store.meta_get(REMOTE_KEY)
            if previous is not None:
                store.meta_delete(REMOTE_KEY)
        return {"remote": None, "previous": previous}

    def show(self) -> dict[str, Any]:
        """The remote, the device id (None until first needed) and where the token is kept (never the token)."""
        url = self.url()
        return {"remote": url, "deviceId": self.s.store.meta_get(DEVICE_KEY),
                "token": self._token_info(url) if url else None}

    # ------------------------------------------------------------------ the token

    def _token_info(self, url: str) -> dict[str, str] | None:
        source = credentials.where(self.s.settings, url)
        if source is None:
            return None
        return {"source": source, "where": credentials.describe(self.s.settings, source)}

    def credential(self, url: str | None = None) -> credentials.Credential | None:
        """The token to use for the remote (or ``url``), with where it came from; None when there is none."""
        return credentials.load(self.s.settings, url or self.require_url())

    def client(self, *, token: str | None = None, timeout: float = 30.0) -> Client:
        """An HTTP client for the remote with the stored token (or ``token``) and this device's id. Without a
        token it raises NotAuthorisedError (exit 77) saying how to log in."""
        from practiceplan.sync.client import Client

        url = self.require_url()
        return Client(url, token if token is not None else self.token(url), self.device_id(), timeout=timeout)

    def token(self, url: str) -> str:
        """The stored token for ``url``; NotAuthorisedError (exit 77) saying how to log in when there is none."""
        found = self.credential(url)
        if found is None:
            raise NotAuthorisedError(f"no token is stored for {url}", hint="run `practiceplan login`")
        return found.token

    def login(self, token: str, *, verify: bool = True) -> dict[str, Any]:
        """Check ``token`` with the server (unless not ``verify``), then store it for the remote. A refused token
        (exit 77) or an unreachable server (exit 69) stores nothing."""
        url = self.require_url()
        token = credentials.check_token(token)
        if verify:
            with self.client(token=token) as client:
                client.status()
        source = credentials.save(self.s.settings, url, token)
        shadowed = credentials.ENV_TOKEN if self.s.settings.env.get(credentials.ENV_TOKEN, "").strip() else None
        return {"remote": url, "stored": source, "where": credentials.describe(self.s.settings, source),
                "verified": verify, "shadowedBy": shadowed}

    def logout(self) -> dict[str, Any]:
        """Remove the remote's token from the keyring and the file. ``cleared`` lists the places it was in
        (empty when there was none); ``envStillSet`` says ``PRACTICEPLAN_TOKEN`` still supplies one."""
        url = self.require_url()
        cleared = credentials.delete(self.s.settings, url)
        return {"remote": url, "cleared": cleared,
                "envStillSet": bool(self.s.settings.env.get(credentials.ENV_TOKEN, "").strip())}

    def auth_status(self, *, check: bool = False) -> dict[str, Any]:
        """The remote (None when none is set) and where its token is kept; with ``check``, asks the server whether it accepts the token
        (NotAuthorisedError 77 when refused or missing, RemoteUnavailableError 69 when unreachable)."""
        url = self.require_url() if check else self.url()
        if url:
            token = self._token_info(url)
        elif self.s.settings.env.get(credentials.ENV_TOKEN, "").strip():
            token = {"source": "env", "where": credentials.describe(self.s.settings, "env")}
        else:
            token = None
        result: dict[str, Any] = {"remote": url, "token": token, "accepted": None}
        if check:
            with self.client() as client:
                client.status()
            result["accepted"] = True
        return result
