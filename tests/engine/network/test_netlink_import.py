"""engine.network.netlink imports only the part of pyroute2 it uses."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_netlink_loads_only_the_rtnetlink_part_of_pyroute2() -> None:
    """The package's __init__ (every pyroute2 class) is not run unless someone asks for it."""
    code = (
        "import sys, engine.network.netlink as n\n"
        "assert 'pyroute2.ndb.main' not in sys.modules and 'pyroute2.ipdb' not in sys.modules\n"
        "import pyroute2\n"
        "from pyroute2 import IPRoute, NDB\n"            # anything else: the whole package
        "assert IPRoute is n.IPRoute and 'pyroute2.ndb.main' in sys.modules\n"
        "from pyroute2 import config\n"
        "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       cwd=REPO)
    assert r.stdout.strip() == "ok", r.stderr
