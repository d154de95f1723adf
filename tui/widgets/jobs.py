"""Progress of long jobs (load, import, pull), shown above the footer while they run."""
from __future__ import annotations

import time
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Label, ProgressBar

from .format import human_size


class Job(Horizontal):
    """One running job: what it is doing and how far it got."""

    def __init__(self, title: str) -> None:
        super().__init__(classes="job")
        self.title = title
        self._early: Any = None

    def compose(self) -> ComposeResult:
        yield Label(self.title, classes="job-title")
        yield ProgressBar(total=None, show_eta=False, classes="job-bar")
        yield Label("", classes="job-what")

    def on_mount(self) -> None:
        if self._early is not None:
            self.update_progress(self._early)

    def update_progress(self, p: Any) -> None:
        if not self.is_mounted:          # a report before compose: show it on mount
            self._early = p
            return
        bar = self.query_one(ProgressBar)
        if p.total:
            bar.update(total=p.total, progress=p.done)
        layers = f"layer {p.layer}/{p.layers} " if p.layers else ""
        total = f"/{human_size(p.total)}" if p.total else ""
        self.query_one(".job-what", Label).update(f"{layers}{human_size(p.done)}{total}")


class Jobs(Vertical):
    """The stack of running jobs; empty (and hidden) when nothing runs."""

    class Progressed(Message):
        def __init__(self, job: Job, progress: Any) -> None:
            super().__init__()
            self.job = job
            self.progress = progress

    def start(self, title: str) -> Job:
        job = Job(title)
        self.mount(job)
        self.add_class("-busy")
        return job

    def reporter(self, job: Job, every: float = 0.1) -> Any:
        """A thread-safe progress callback that posts at most every ``every`` seconds."""
        last = [0.0]

        def report(p: Any) -> None:
            now = time.monotonic()
            if now - last[0] >= every or (p.total and p.done >= p.total):
                last[0] = now
                self.post_message(self.Progressed(job, p))

        return report

    def on_jobs_progressed(self, event: Progressed) -> None:
        if event.job.is_attached:
            event.job.update_progress(event.progress)

    def finish(self, job: Job) -> None:
        job.remove()
        if len(self.children) <= 1:
            self.remove_class("-busy")
