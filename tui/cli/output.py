"""Plain-text output for the CLI: tables, human sizes and ages, JSON."""
from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Sequence, TextIO

from engine import InvalidArgument


_SIZE_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_size(n: int | float) -> str:
    """Docker's ``units.HumanSizeWithPrecision(n, 3)``: ``0B``, ``999B``, ``4.26MB``."""
    size, i = float(n), 0
    while abs(size) >= 1000 and i < len(_SIZE_UNITS) - 1:
        size /= 1000
        i += 1
    return f"{size:.3g}{_SIZE_UNITS[i]}"


def human_ago(t: datetime | None, now: datetime | None = None) -> str:
    """``3 minutes ago``; ``N/A`` for an unknown time."""
    if t is None:
        return "N/A"
    import humanize                # only the verbs that print a time load it
    now = now or datetime.now(timezone.utc)
    return humanize.naturaltime(now - t)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], out: TextIO | None = None) -> None:
    """Print left-aligned columns separated by three spaces, like Docker."""
    out = out or sys.stdout
    rows = [list(map(str, r)) for r in rows]
    widths = [len(h) for h in headers]
    for r in rows:
        for i, cell in enumerate(r):
            widths[i] = max(widths[i], len(cell))
    for r in [list(headers)] + rows:
        line = "   ".join(c.ljust(widths[i]) for i, c in enumerate(r[:-1]))
        out.write((line + "   " + r[-1] if len(r) > 1 else r[0]).rstrip() + "\n")


def print_json(value: Any, out: TextIO | None = None) -> None:
    """Indented JSON, as ``docker inspect`` prints it."""
    out = out or sys.stdout
    json.dump(value, out, indent=4, default=str)
    out.write("\n")


# -- Go templates (``--format``) -----------------------------------------------------
#
# Docker's ``--format`` takes a Go text/template. This is the part of that
# language people use on the command line: fields (``.A.B``), ``.``, ``$``
# and variables, pipelines (``.X | json``), parentheses, string/number
# literals, ``if``/``else``/``with``/``range`` blocks, ``{{- -}}`` trimming,
# comments, and Docker's functions (json, join, split, index, len, upper,
# lower, title, truncate, pad, printf, print, println).

class TemplateError(Exception):
    """A malformed template or one that names an unknown field (``strict``)."""


_MISSING = object()


def _go_str(v: Any, top: bool = True) -> str:
    """Go's ``%v`` of a decoded-JSON value."""
    if v is _MISSING:
        return "<no value>"
    if v is None:
        return "<no value>" if top else "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e21:
        return str(int(v))
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_go_str(v[k], False)}" for k in sorted(v, key=str)) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(_go_str(x, False) for x in v) + "]"
    return str(v)


def _truthy(v: Any) -> bool:
    if v is _MISSING or v is None:
        return False
    if isinstance(v, (bool, int, float, str, list, tuple, dict)):
        return bool(v)
    return True


def _fn_json(v: Any) -> str:
    return json.dumps(None if v is _MISSING else v, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def _fn_index(v: Any, *keys: Any) -> Any:
    for k in keys:
        try:
            v = v[k]
        except (KeyError, IndexError, TypeError) as err:
            if isinstance(v, dict):
                return _MISSING
            raise TemplateError(f"index of {_go_str(v)} with {k!r}: {err}") from err
    return v


def _fn_printf(fmt: str, *args: Any) -> str:
    out, i, n = [], 0, 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%" or i + 1 >= len(fmt):
            out.append(c)
            i += 1
            continue
        j = i + 1
        while j < len(fmt) and fmt[j] in "-+ #0123456789.":
            j += 1
        verb, flags = fmt[j] if j < len(fmt) else "v", fmt[i + 1:j]
        i = j + 1
        if verb == "%":
            out.append("%")
            continue
        arg = args[n] if n < len(args) else _MISSING
        n += 1
        if verb == "q":
            out.append(json.dumps(_go_str(arg), ensure_ascii=False))
        elif verb in "dxXo" and isinstance(arg, (int, float)) and not isinstance(arg, bool):
            out.append(("%" + flags + verb) % int(arg))
        elif verb in "feg" and isinstance(arg, (int, float)):
            out.append(("%" + flags + verb) % arg)
        else:
            out.append(("%" + flags + "s") % _go_str(arg))
    return "".join(out)


def _fn_print(*args: Any) -> str:
    # Go's Sprint: a space between operands when neither is a string.
    out = ""
    for n, a in enumerate(args):
        if n and not isinstance(a, str) and not isinstance(args[n - 1], str):
            out += " "
        out += _go_str(a)
    return out


def _fn_truncate(s: Any, n: int) -> str:
    s = _go_str(s)
    return s[:int(n)]


_FUNCS: dict[str, Callable[..., Any]] = {
    "json": _fn_json,
    "join": lambda v, sep: sep.join(_go_str(x) for x in (v or [])),
    "split": lambda s, sep: _go_str(s).split(sep),
    "index": _fn_index,
    "len": lambda v: 0 if v is None or v is _MISSING else len(v),
    "upper": lambda s: _go_str(s).upper(),
    "lower": lambda s: _go_str(s).lower(),
    "title": lambda s: _go_str(s).title(),
    "truncate": _fn_truncate,
    "pad": lambda s, before, after: " " * int(before) + _go_str(s) + " " * int(after),
    "printf": _fn_printf,
    "print": _fn_print,
    "println": lambda *a: " ".join(_go_str(x) for x in a) + "\n",
    "not": lambda v: not _truthy(v),
    "and": lambda *a: next((x for x in a if not _truthy(x)), a[-1] if a else None),
    "or": lambda *a: next((x for x in a if _truthy(x)), a[-1] if a else None),
    "eq": lambda a, *b: any(a == x for x in b),
    "ne": lambda a, b: a != b,
}

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<var>\$\w*(?:\.\w+)*)
  | (?P<field>(?:\.\w+)+|\.)
  | (?P<declare>:=)
  | (?P<punct>[|(),=])
  | (?P<ident>\w+)
""", re.X)


def _lex(src: str) -> list[tuple[str, str]]:
    toks, pos = [], 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m:
            raise TemplateError(f"unexpected {src[pos:]!r} in {{{{{src}}}}}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind != "ws":
            toks.append((kind, m.group()))
    return toks


class _Template:
    """A parsed template: a tree of text, actions and blocks."""

    def __init__(self, src: str) -> None:
        self.items = self._split(src)
        self.pos = 0
        self.tree = self._parse_list(top=True)

    @staticmethod
    def _split(src: str) -> list[tuple[str, str]]:
        items: list[tuple[str, str]] = []
        pos = 0
        while True:
            start = src.find("{{", pos)
            if start < 0:
                items.append(("text", src[pos:]))
                return items
            end = src.find("}}", start + 2)
            if end < 0:
                raise TemplateError("unclosed action: '{{' with no '}}'")
            text, action = src[pos:start], src[start + 2:end]
            if action.startswith("- ") or action == "-":
                text, action = text.rstrip(), action[1:]
            trim_after = action.endswith(" -")
            if trim_after:
                action = action[:-1]
            items.append(("text", text))
            items.append(("action", action.strip()))
            pos = end + 2
            if trim_after:
                while pos < len(src) and src[pos].isspace():
                    pos += 1

    def _parse_list(self, top: bool = False) -> list[Any]:
        nodes: list[Any] = []
        while self.pos < len(self.items):
            kind, val = self.items[self.pos]
            self.pos += 1
            if kind == "text":
                if val:
                    nodes.append(("text", val))
                continue
            if val.startswith("/*"):
                continue
            word = val.split(None, 1)[0] if val else ""
            rest = val[len(word):].strip()
            if word in ("end", "else"):
                if top:
                    raise TemplateError(f"unexpected {{{{{word}}}}}")
                self.pos -= 1
                return nodes
            if word in ("if", "with", "range"):
                nodes.append(self._parse_block(word, rest))
            else:
                if not val:
                    raise TemplateError("missing value for command")
                nodes.append(("action", self._pipeline(val)))
        if not top:
            raise TemplateError("unexpected EOF: a block has no {{end}}")
        return nodes

    def _parse_block(self, word: str, rest: str) -> tuple[Any, ...]:
        decl: list[str] = []
        m = re.match(r"^(\$\w*)\s*(?:,\s*(\$\w*)\s*)?:=\s*(.*)$", rest, re.S)
        if m and word in ("range", "with"):
            decl = [v for v in (m.group(1), m.group(2)) if v]
            rest = m.group(3)
        pipe = self._pipeline(rest)
        body = self._parse_list()
        other: list[Any] = []
        kind, val = self.items[self.pos]
        self.pos += 1
        if val.startswith("else"):
            tail = val[4:].strip()
            if tail.startswith("if ") and word == "if":
                other = [self._parse_block("if", tail[3:].strip())]
                return ("if", pipe, decl, body, other)
            other = self._parse_list()
            kind, val = self.items[self.pos]
            self.pos += 1
        if val != "end":
            raise TemplateError(f"expected {{{{end}}}}, got {{{{{val}}}}}")
        return (word, pipe, decl, body, other)

    def _pipeline(self, src: str) -> list[list[Any]]:
        toks = _lex(src)
        pipe, i = self._parse_pipe(toks, 0)
        if i != len(toks):
            raise TemplateError(f"unexpected {toks[i][1]!r} in {{{{{src}}}}}")
        if not pipe or not pipe[0]:
            raise TemplateError(f"missing value in {{{{{src}}}}}")
        return pipe

    def _parse_pipe(self, toks: list[tuple[str, str]], i: int) -> tuple[list[list[Any]], int]:
        pipe: list[list[Any]] = [[]]
        while i < len(toks):
            kind, val = toks[i]
            if kind == "punct" and val == ")":
                break
            i += 1
            if kind == "punct" and val == "|":
                if not pipe[-1]:
                    raise TemplateError("missing command before '|'")
                pipe.append([])
            elif kind == "punct" and val == "(":
                sub, i = self._parse_pipe(toks, i)
                if i >= len(toks) or toks[i][1] != ")":
                    raise TemplateError("unclosed '('")
                i += 1
                # a field right after ')' — (index .X 0).Name
                if i < len(toks) and toks[i][0] == "field" and toks[i][1] != ".":
                    pipe[-1].append(("sub", sub, toks[i][1][1:].split(".")))
                    i += 1
                else:
                    pipe[-1].append(("sub", sub, []))
            elif kind == "str":
                pipe[-1].append(("lit", json.loads(val)))
            elif kind == "raw":
                pipe[-1].append(("lit", val[1:-1]))
            elif kind == "num":
                pipe[-1].append(("lit", float(val) if "." in val else int(val)))
            elif kind == "ident" and val in ("true", "false", "nil"):
                pipe[-1].append(("lit", {"true": True, "false": False, "nil": None}[val]))
            elif kind == "ident":
                if val not in _FUNCS:
                    raise TemplateError(f'function "{val}" not defined')
                pipe[-1].append(("func", val))
            elif kind == "field":
                pipe[-1].append(("field", [] if val == "." else val[1:].split(".")))
            elif kind == "var":
                name, _, path = val.partition(".")
                pipe[-1].append(("var", name, path.split(".") if path else []))
            else:
                raise TemplateError(f"unexpected {val!r}")
        return pipe, i


class _Exec:
    def __init__(self, root: Any, strict: bool) -> None:
        self.strict = strict
        self.vars: list[dict[str, Any]] = [{"$": root}]

    def field(self, v: Any, path: list[str]) -> Any:
        for name in path:
            if isinstance(v, dict):
                if name in v:
                    v = v[name]
                elif self.strict:
                    hint = ", ".join(sorted(map(str, v)))
                    raise TemplateError(f"unknown field {name!r} in --format (fields: {hint})")
                else:
                    return _MISSING
            elif v is None or v is _MISSING:
                if self.strict:
                    raise TemplateError(f"nil value has no field {name!r}")
                return _MISSING
            elif hasattr(v, name) and not name.startswith("_"):
                v = getattr(v, name)
            else:
                raise TemplateError(f"can't evaluate field {name} in {_go_str(v)!r}")
        return v

    def arg(self, node: tuple[Any, ...], dot: Any) -> Any:
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "field":
            return self.field(dot, node[1])
        if kind == "var":
            for scope in reversed(self.vars):
                if node[1] in scope:
                    return self.field(scope[node[1]], node[2])
            raise TemplateError(f"undefined variable: {node[1]}")
        if kind == "sub":
            return self.field(self.pipe(node[1], dot), node[2])
        if kind == "func":
            return self.call(node[1], [], dot)
        raise TemplateError(f"bad node {node!r}")

    def call(self, name: str, args: list[Any], dot: Any) -> Any:
        try:
            return _FUNCS[name](*args)
        except TemplateError:
            raise
        except (TypeError, ValueError, AttributeError) as err:
            raise TemplateError(f"error calling {name}: {err}") from err

    def pipe(self, pipe: list[list[Any]], dot: Any) -> Any:
        value: Any = _MISSING
        for n, cmd in enumerate(pipe):
            head = cmd[0]
            extra = [value] if n else []
            if head[0] == "func":
                args = [self.arg(a, dot) for a in cmd[1:]] + extra
                value = self.call(head[1], args, dot)
            else:
                if len(cmd) > 1 or extra:
                    raise TemplateError(f"can't give arguments to a non-function {head!r}")
                value = self.arg(head, dot)
        return value

    def run(self, nodes: list[Any], dot: Any, out: list[str]) -> None:
        for node in nodes:
            kind = node[0]
            if kind == "text":
                out.append(node[1])
            elif kind == "action":
                out.append(_go_str(self.pipe(node[1], dot)))
            else:
                _, pipe, decl, body, other = node
                value = self.pipe(pipe, dot)
                if kind == "if":
                    self.run(body if _truthy(value) else other, dot, out)
                elif kind == "with":
                    if _truthy(value):
                        self.vars.append({decl[0]: value} if decl else {})
                        self.run(body, value, out)
                        self.vars.pop()
                    else:
                        self.run(other, dot, out)
                else:
                    self._range(value, decl, body, other, dot, out)

    def _range(self, value: Any, decl: list[str], body: list[Any], other: list[Any], dot: Any,
               out: list[str]) -> None:
        if value is None or value is _MISSING:
            pairs: list[tuple[Any, Any]] = []
        elif isinstance(value, dict):
            pairs = [(k, value[k]) for k in sorted(value, key=str)]
        elif isinstance(value, (list, tuple)):
            pairs = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            pairs = [(i, i) for i in range(value)]
        else:
            raise TemplateError(f"range can't iterate over {_go_str(value)}")
        if not pairs:
            self.run(other, dot, out)
            return
        for k, v in pairs:
            scope: dict[str, Any] = {}
            if len(decl) == 1:
                scope[decl[0]] = v
            elif len(decl) == 2:
                scope[decl[0]], scope[decl[1]] = k, v
            self.vars.append(scope)
            self.run(body, v, out)
            self.vars.pop()


def render_template(fmt: str, data: Any, *, strict: bool = True) -> str:
    """Render Docker's ``--format`` Go template ``fmt`` against ``data``.

    ``strict`` (for records with a fixed set of fields, as ``ps`` has) makes
    an unknown field an error; without it a missing key prints
    ``<no value>``, as Go does for the maps ``inspect`` formats.

    Raises:
        InvalidArgument: a malformed template, an unknown function or field.
    """
    try:
        out: list[str] = []
        _Exec(data, strict).run(_Template(fmt).tree, data, out)
        return "".join(out)
    except TemplateError as err:
        raise InvalidArgument(f"bad --format template: {err}",
                              hint="see Go's text/template; e.g. '{{.ID}} {{json .Config}}'") from None


def tabwrite(lines: Iterable[str], out: TextIO | None = None, *, minwidth: int = 10,
             padding: int = 3) -> None:
    """Align tab-separated cells into columns, like Go's tabwriter in Docker's tables."""
    out = out or sys.stdout
    rows = [line.split("\t") for line in lines]
    widths: dict[int, int] = {}
    for r in rows:
        for i, cell in enumerate(r[:-1]):
            widths[i] = max(widths.get(i, 0), len(cell) + padding, minwidth)
    for r in rows:
        out.write("".join(c.ljust(widths[i]) for i, c in enumerate(r[:-1])) + r[-1] + "\n")


def format_records(fmt: str, records: Sequence[dict[str, Any]], headers: dict[str, str] | None = None,
                   out: TextIO | None = None, *, strict: bool = True) -> None:
    """Print ``records`` with a ``--format`` value, as Docker's list verbs do.

    ``json`` prints one compact JSON object per record; ``table TEMPLATE``
    prints a header row (``headers`` maps a field to its column title,
    default the field's name in capitals) and aligns the tab-separated
    columns; any other value is a template printed once per record.

    Raises:
        InvalidArgument: a malformed template or an unknown field.
    """
    out = out or sys.stdout
    if fmt.strip() == "json":
        for r in records:
            out.write(json.dumps(r, ensure_ascii=False, default=str, sort_keys=True,
                                 separators=(",", ":")) + "\n")
        return
    is_table = fmt.startswith("table")
    tmpl = (fmt[5:].lstrip() if is_table else fmt).replace("\\t", "\t").replace("\\n", "\n")
    if is_table and not tmpl:
        raise InvalidArgument("'table' needs a template after it",
                              hint="e.g. --format 'table {{.ID}}\\t{{.Names}}'")
    lines = [render_template(tmpl, r, strict=strict) for r in records]
    if not is_table:
        for line in lines:
            out.write(line + "\n")
        return
    keys = set(records[0]) if records else set((headers or {}).keys())
    names = {k: (headers or {}).get(k, k.upper()) for k in keys | set((headers or {}).keys())}
    head = render_template(tmpl, names, strict=False).replace("<no value>", "")
    tabwrite([head] + lines, out)


def print_inspect(items: Sequence[Any], fmt: str | None = None, out: TextIO | None = None) -> None:
    """``inspect``'s output: a JSON array, or ``fmt`` rendered once per object (``-f``)."""
    out = out or sys.stdout
    if not fmt or fmt.strip() == "json":
        print_json(list(items), out)
        return
    for item in items:
        out.write(render_template(fmt.replace("\\t", "\t").replace("\\n", "\n"), item,
                                  strict=False) + "\n")
