"""``engine``'s public names: all there, the heavy ones loaded on first use."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


def _fresh(code: str) -> list[str]:
    """Run ``code`` in a new interpreter; the modules it had imported at the end."""
    r = subprocess.run([sys.executable, "-c", code + "\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
                       capture_output=True, text=True, cwd=REPO,
                       env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
    assert r.returncode == 0, r.stderr
    return list(json.loads(r.stdout.splitlines()[-1]))


def test_every_public_name_resolves() -> None:
    import engine
    for name in engine.__all__:
        assert getattr(engine, name) is not None, name
    assert set(engine.__all__) <= set(dir(engine))
    from engine.containers.copy import CopyError
    assert engine.CopyError is CopyError


def test_unknown_name_is_an_attribute_error() -> None:
    import engine
    with pytest.raises(AttributeError, match="no_such_name"):
        engine.no_such_name  # noqa: B018


def test_import_engine_loads_no_engine_code() -> None:
    mods = _fresh("import engine; engine.ContainerSpec, engine.EngineError")
    assert "engine.records" in mods
    for heavy in ("engine.api", "engine.state", "engine.containers.copy", "engine.images.store",
                  "sqlite3"):
        assert heavy not in mods, heavy


def test_engine_is_loaded_on_first_use() -> None:
    mods = _fresh("from engine import Engine; assert Engine.__name__ == 'Engine'")
    assert "engine.api" in mods
    # The whole facade, without the code of the verbs it was not asked to run.
    for heavy in ("engine.containers.exec", "engine.containers.commit", "engine.events",
                  "engine.cgroups.stats", "engine.diskusage", "engine.images.archive"):
        assert heavy not in mods, heavy


def test_star_import_gives_every_public_name() -> None:
    _fresh("from engine import *; import engine\n"
           "missing = [n for n in engine.__all__ if n not in globals()]\n"
           "assert not missing, missing")
