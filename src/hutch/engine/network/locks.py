"""Host-wide advisory locks of the networks' code (flock on a file under /run/hutch): several `hutch`
commands check, then change the same host state (chains, bridges, names, aardvark's files)."""

from __future__ import annotations

import os

from hutch.engine.flock import Held

LOCK_DIR = "/run/hutch/cni/locks"


def held(path: str, shared: bool = False) -> Held:
    """`path` locked exclusively, or `shared`, (made if missing, in a dir made if missing) for the block."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    return Held(path, shared)


def networks(root: str, shared: bool = False) -> Held:
    """ROOT's networks (their names are per root): a create or connect holds the lock shared from finding
    its networks until its plan names them, network rm and prune exclusive from looking for users until
    the network is gone, so neither removes a network a container is joining. Nothing taken under the
    exclusive lock may take it shared (two fds of one process conflict)."""
    return held(os.path.join(root, "networks.lock"), shared)
