"""Signal names as users give them (``KILL``, ``SIGTERM``, ``15``) and as the runtime takes them."""
from __future__ import annotations

import signal as signal_mod

from ..errors import InvalidArgument


def signame(sig: str | int) -> str:
    """``SIGTERM``, ``term``, ``15`` -> ``TERM``.

    Raises:
        InvalidArgument: not a signal.
    """
    if isinstance(sig, int) or str(sig).isdigit():
        try:
            return signal_mod.Signals(int(sig)).name[3:]
        except ValueError:
            raise InvalidArgument(f"invalid signal {sig!r}") from None
    s = str(sig).strip().upper()
    s = s[3:] if s.startswith("SIG") else s
    if not hasattr(signal_mod, "SIG" + s) or s.startswith("_"):
        raise InvalidArgument(f"invalid signal {sig!r}", hint="e.g. KILL, TERM, HUP, 9")
    return s


def signum(name: str) -> int:
    return int(getattr(signal_mod, "SIG" + name))
