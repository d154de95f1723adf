"""Containers: the steps behind the lifecycle verbs of :class:`engine.Engine`.

- ``lifecycle``: the pure state/transition table (``can_start``...).
- ``spec``: the OCI ``config.json`` with Docker's defaults; ``caps``,
  ``users``, ``mounts`` for its parts; ``seccomp`` for the default profile.
- ``rootfs``: the overlay root filesystem.
- ``runtime``: the runc/crun adapter; ``monitor``: conmon.
- ``model``: what the state database stores per container.
- ``logs``, ``attach``, ``exec``, ``copy``, ``changes``, ``commit``: I/O verbs.

Submodules are imported where used, so importing the engine stays cheap.
"""
