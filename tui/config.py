"""The app's config file: keymap, theme and log highlight rules.

Read from ``$PORTSIDE_CONFIG`` or ``$XDG_CONFIG_HOME/portside/config.toml``
(``~/.config/portside/config.toml``). Every part is optional::

    theme = "textual-light"          # any Textual theme name
    mouse = false                    # start with mouse capture off

    [keys]                           # binding id = "key[,key...]" (see `?`)
    "container.stop" = "x"
    "logs.search" = "/,ctrl+f"

    [[highlight]]                    # log lines; first matching rule wins per span
    pattern = "timeout|refused"
    style = "bold magenta"

A broken file never stops the app: the problems are collected in
``Config.problems`` and shown as a notification, and the defaults are used.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from rich.errors import StyleSyntaxError
from rich.style import Style

DEFAULT_THEME_DARK = "textual-dark"
DEFAULT_THEME_LIGHT = "textual-light"


@dataclass(frozen=True)
class HighlightRule:
    """A regex and the Rich style its matches get in the logs pane."""

    pattern: re.Pattern[str]
    style: str


# Built in, applied after the user's rules so the user's win on overlap.
DEFAULT_HIGHLIGHTS: tuple[tuple[str, str], ...] = (
    (r"\b(ERROR|ERR|FATAL|CRITICAL|PANIC|error|fatal|panic)\b", "bold red"),
    (r"\b(WARN|WARNING|warn|warning)\b", "bold yellow"),
)


@dataclass(frozen=True)
class Config:
    """What the config file sets; defaults when it is absent."""

    theme: str = DEFAULT_THEME_DARK
    mouse: bool = True
    keymap: dict[str, str] = field(default_factory=dict)
    highlights: tuple[HighlightRule, ...] = ()
    path: Path | None = None
    problems: tuple[str, ...] = ()


def default_path() -> Path:
    env = os.environ.get("PORTSIDE_CONFIG")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "portside" / "config.toml"


def builtin_highlights() -> tuple[HighlightRule, ...]:
    return tuple(HighlightRule(re.compile(p), s) for p, s in DEFAULT_HIGHLIGHTS)


def load_config(path: Path | None = None) -> Config:
    """Read the config file; never raises for a bad file (see ``Config.problems``)."""
    path = path or default_path()
    problems: list[str] = []
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Config(highlights=builtin_highlights())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        return Config(highlights=builtin_highlights(), path=path,
                      problems=(f"{path}: {err}; using defaults",))
    return parse_config(raw, path, problems)


def parse_config(raw: dict[str, object], path: Path | None = None,
                 problems: list[str] | None = None) -> Config:
    """Build a ``Config`` from parsed TOML, collecting what is wrong."""
    problems = problems if problems is not None else []
    where = str(path) if path else "config"

    theme = raw.get("theme", DEFAULT_THEME_DARK)
    if not isinstance(theme, str):
        problems.append(f"{where}: theme must be a string")
        theme = DEFAULT_THEME_DARK

    mouse = raw.get("mouse", True)
    if not isinstance(mouse, bool):
        problems.append(f"{where}: mouse must be true or false")
        mouse = True

    keymap: dict[str, str] = {}
    keys = raw.get("keys", {})
    if not isinstance(keys, dict):
        problems.append(f"{where}: [keys] must be a table of binding id = \"key\"")
        keys = {}
    for binding_id, key in keys.items():
        if isinstance(key, list) and all(isinstance(k, str) for k in key):
            key = ",".join(key)
        if not isinstance(key, str) or not key.strip():
            problems.append(f"{where}: keys.{binding_id} must be a key like \"x\" or \"ctrl+x\"")
            continue
        keymap[str(binding_id)] = key.replace(" ", "")

    rules: list[HighlightRule] = []
    entries = raw.get("highlight", [])
    if not isinstance(entries, list):
        problems.append(f"{where}: highlight must be an array of tables ([[highlight]])")
        entries = []
    for n, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("pattern"), str):
            problems.append(f"{where}: highlight #{n} needs pattern = \"regex\"")
            continue
        style = entry.get("style", "bold")
        try:
            Style.parse(str(style))
            pattern = re.compile(entry["pattern"])
        except re.error as err:
            problems.append(f"{where}: highlight #{n}: bad regex: {err}")
            continue
        except StyleSyntaxError as err:
            problems.append(f"{where}: highlight #{n}: bad style: {err}")
            continue
        rules.append(HighlightRule(pattern, str(style)))

    unknown = set(raw) - {"theme", "mouse", "keys", "highlight"}
    if unknown:
        problems.append(f"{where}: unknown settings ignored: {', '.join(sorted(unknown))}")
    return Config(theme=theme, mouse=mouse, keymap=keymap,
                  highlights=tuple(rules) + builtin_highlights(), path=path,
                  problems=tuple(problems))
