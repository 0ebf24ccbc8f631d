"""An OpenID Connect provider for the login tests: the PyPI package oidc-provider-mock, on a loopback port.

It plays the part of the school's login service (Google, Microsoft, a school's own server).
Its sign-in page asks for no password: it lists the accounts given here as one button each,
so a browser test chooses who logs in by clicking a name. It accepts any client id and secret,
so the app needs no registration. It listens on 127.0.0.1 only and stops when the `with` ends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import werkzeug.serving


@dataclass(frozen=True)
class Account:
    """One account at the provider: `sub` is its permanent id there; email and name are what it tells the app."""

    sub: str
    email: str
    name: str


@contextmanager
def running_provider(accounts: list[Account]) -> Iterator[str]:
    """Start the provider on a free 127.0.0.1 port in a thread; yields its address, stops it at the end."""
    import oidc_provider_mock

    users = [oidc_provider_mock.User(sub=a.sub, claims={"email": a.email, "email_verified": True, "name": a.name}) for a in accounts]
    app = oidc_provider_mock.app(user_claims=users)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)  # port 0: the system picks a free one
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
