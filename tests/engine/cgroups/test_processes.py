"""``top`` with ps options: the host's ps cut to a container's pids, as docker top does it."""
from __future__ import annotations

import subprocess

import pytest

from engine.cgroups.processes import ps_table
from engine.errors import InvalidArgument


class FakePs:
    """Stands in for the host's ps: records each argv, answers from a script."""

    def __init__(self, *answers: tuple[int, str, str]) -> None:
        self.answers = list(answers)
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        rc, out, err = self.answers.pop(0)
        return subprocess.CompletedProcess(argv, rc, out, err)


AUX = """USER       PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND
root         1  0.0  0.0  44368 12460 ?        S    19:23   0:07 /sbin/init splash
root      1811  0.5  0.0   2268  1760 ?        Ss   19:44   0:00 sleep 302
root      1821  0.0  0.0   2268  1764 pts/1    S    19:44   0:00 sh -c echo a  b
"""


def test_rows_of_the_container_only_and_the_command_keeps_its_spaces() -> None:
    ps = FakePs((0, AUX, ""))
    titles, rows = ps_table([1811, 1821], ["aux"], run=ps)
    assert ps.calls == [["ps", "aux", "-q", "1811,1821"]]
    assert titles[1] == "PID" and titles[-1] == "COMMAND"
    assert [r[1] for r in rows] == ["1811", "1821"]
    assert rows[1][-1] == "sh -c echo a b" and len(rows[1]) == len(titles)


def test_options_ps_refuses_with_q_are_retried_without() -> None:
    ps = FakePs((1, "", "error: -q cannot be used with forest"), (0, AUX, ""))
    _, rows = ps_table([1811], ["f"], run=ps)
    assert ps.calls == [["ps", "f", "-q", "1811"], ["ps", "f"]]
    assert [r[1] for r in rows] == ["1811"]


def test_thread_rows_follow_their_process() -> None:
    out = ("  PID   TID CMD\n    1     - init\n    -     1 -\n 1811     - sleep\n"
           "    -  1811 -\n    -  1812 -\n")
    _, rows = ps_table([1811], ["-o", "pid,tid,cmd", "m"], run=FakePs((0, out, "")))
    assert rows == [["1811", "-", "sleep"], ["-", "1811", "-"], ["-", "1812", "-"]]


def test_refusals_say_what_to_do() -> None:
    with pytest.raises(InvalidArgument, match="Couldn't find PID field"):
        ps_table([1], ["-o", "comm"], run=FakePs((0, "COMMAND\ninit\n", "")))
    with pytest.raises(InvalidArgument, match="ps refused the options '--bogus': error: unknown"):
        ps_table([1], ["--bogus"], run=FakePs((1, "", "error: unknown gnu long option\n"),
                                              (1, "", "error: unknown gnu long option\n")))
