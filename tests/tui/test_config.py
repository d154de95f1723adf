"""The config file: keymap, theme, highlight rules; bad files never stop the app."""
from __future__ import annotations

from pathlib import Path

from tui.config import DEFAULT_THEME_DARK, load_config, parse_config


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    cfg = load_config(tmp_path / "nope.toml")
    assert cfg.theme == DEFAULT_THEME_DARK and cfg.keymap == {} and not cfg.problems
    assert any(r.pattern.search("ERROR boom") for r in cfg.highlights)


def test_full_config(tmp_path: Path) -> None:
    p = tmp_path / "config.toml"
    p.write_text('theme = "textual-light"\nmouse = false\n'
                 '[keys]\n"container.stop" = "x"\n"logs.search" = ["slash", "ctrl+f"]\n'
                 '[[highlight]]\npattern = "timeout"\nstyle = "bold magenta"\n')
    cfg = load_config(p)
    assert cfg.theme == "textual-light" and cfg.mouse is False
    assert cfg.keymap == {"container.stop": "x", "logs.search": "slash,ctrl+f"}
    assert cfg.highlights[0].pattern.pattern == "timeout"
    assert cfg.highlights[0].style == "bold magenta"
    assert not cfg.problems


def test_broken_toml_is_reported_not_raised(tmp_path: Path) -> None:
    p = tmp_path / "config.toml"
    p.write_text("theme = \n")
    cfg = load_config(p)
    assert cfg.problems and "using defaults" in cfg.problems[0]


def test_bad_entries_are_collected() -> None:
    cfg = parse_config({"theme": 3, "keys": {"a": ""}, "highlight": [{"pattern": "("},
                        {"pattern": "x", "style": "not a style at all"}], "colour": 1})
    text = "\n".join(cfg.problems)
    assert "theme" in text and "keys.a" in text and "bad regex" in text
    assert "bad style" in text and "colour" in text
    assert cfg.theme == DEFAULT_THEME_DARK
