"""Is classroom mode on, and is this the teacher? The password comes from the environment or Streamlit's secrets.

Classroom mode is on when a teacher password is configured: LAB_TEACHER_PASSWORD, or
`teacher_password` in .streamlit/secrets.toml (how Streamlit Community Cloud passes secrets).
A wrong guess is answered after a pause, with no detail, so guessing is slow; the password is
compared in constant time and never logged or returned.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Mapping
from typing import Any

WRONG_PASSWORD_DELAY_SECONDS = 1.5


def configured_password(secrets: Mapping[str, Any] | None = None) -> str | None:
    """The teacher password, or None when classroom mode is off (nothing configured)."""
    password = os.environ.get("LAB_TEACHER_PASSWORD")
    if not password and secrets is not None:
        try:
            password = secrets.get("teacher_password")
        except Exception:  # noqa: BLE001 - a missing or unreadable secrets.toml means "not configured"
            password = None
    return str(password) if password else None


def is_teacher_password(given: str, expected: str | None, *, delay: float | None = None) -> bool:
    """Whether `given` is the teacher password; a wrong one returns False only after `delay` seconds (default: the module's)."""
    if expected and given and hmac.compare_digest(given.encode(), expected.encode()):
        return True
    time.sleep(WRONG_PASSWORD_DELAY_SECONDS if delay is None else delay)
    return False
