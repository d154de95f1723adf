"""Image verbs: images, image ls|inspect|rm|prune|bootstrap, import, load, save, tag, rmi, history."""
from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, TextIO

from engine import InvalidArgument, Progress

from .common import confirm, group_help
from .output import format_records, human_ago, human_size, print_inspect, table

if TYPE_CHECKING:
    from engine import Engine


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    _add_images(sub.add_parser("images", help="List images"))
    _add_rmi(sub.add_parser("rmi", help="Remove one or more images"))
    _add_tag(sub.add_parser("tag", help="Give an image another name"))
    _add_load(sub.add_parser("load", help="Load images from a tar archive or OCI layout"))
    _add_save(sub.add_parser("save", help="Save images to a tar archive"))
    _add_import(sub.add_parser("import", help="Make an image from a rootfs tarball"))
    _add_history(sub.add_parser("history", help="Show the history of an image"))
    _add_pull(sub.add_parser("pull", help="Pull an image from a registry"))

    image = sub.add_parser("image", help="Manage images")
    isub = image.add_subparsers(dest="image_verb", metavar="COMMAND", parser_class=type(image))
    _add_images(isub.add_parser("ls", aliases=["list"], help="List images"))
    _add_rmi(isub.add_parser("rm", help="Remove one or more images"))
    _add_tag(isub.add_parser("tag", help="Give an image another name"))
    _add_load(isub.add_parser("load", help="Load images from a tar archive or OCI layout"))
    _add_save(isub.add_parser("save", help="Save images to a tar archive"))
    _add_import(isub.add_parser("import", help="Make an image from a rootfs tarball"))
    _add_history(isub.add_parser("history", help="Show the history of an image"))
    _add_pull(isub.add_parser("pull", help="Pull an image from a registry"))
    p = isub.add_parser("inspect", help="Show details of images as JSON")
    p.add_argument("images", nargs="+")
    p.add_argument("-f", "--format", help="a Go template, e.g. '{{.Id}} {{json .Config.Cmd}}'")
    p.set_defaults(func=cmd_inspect)
    p = isub.add_parser("prune", help="Remove unused images")
    p.add_argument("-a", "--all", action="store_true", help="remove every image no container uses")
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_prune)
    p = isub.add_parser("bootstrap", help="Build a built-in image (busybox) from the host")
    p.add_argument("which", choices=["busybox"])
    p.add_argument("--tag", default="busybox:latest")
    p.set_defaults(func=cmd_bootstrap)
    image.set_defaults(func=group_help(image))


def _add_images(p: argparse.ArgumentParser) -> None:
    p.add_argument("reference", nargs="?", help="only images matching this repository[:tag]")
    p.add_argument("-a", "--all", action="store_true", help="show all images")
    p.add_argument("-q", "--quiet", action="store_true", help="only show image ids")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="reference=, dangling=, label=, before=, since=")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate ids")
    p.add_argument("--digests", action="store_true", help="show digests")
    p.add_argument("--format", help="'json', 'table TEMPLATE' or a Go template, e.g. "
                   "'{{.Repository}}:{{.Tag}}'")
    p.set_defaults(func=cmd_images)


def _add_rmi(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+")
    p.add_argument("-f", "--force", action="store_true", help="untag images used by containers")
    p.set_defaults(func=cmd_rmi)


def _add_tag(p: argparse.ArgumentParser) -> None:
    p.add_argument("source")
    p.add_argument("target")
    p.set_defaults(func=cmd_tag)


def _add_load(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--input", help="archive or OCI layout dir (default: stdin)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_load)


def _add_save(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+")
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p.add_argument("--format", default="docker-archive", choices=["docker-archive", "oci-archive"])
    p.set_defaults(func=cmd_save)


def _add_import(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="rootfs tar (plain, gzip or zstd), or - for stdin")
    p.add_argument("reference", nargs="?")
    p.add_argument("-c", "--change", action="append", default=[],
                   help="Dockerfile instruction: CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME")
    p.add_argument("-m", "--message", default="", help="commit message for the history")
    p.set_defaults(func=cmd_import)


def _add_pull(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="[registry/]name[:tag|@digest]")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_pull)


def _add_history(p: argparse.ArgumentParser) -> None:
    p.add_argument("image")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-H", "--human", default="true", choices=["true", "false"])
    p.set_defaults(func=cmd_history)


# -- handlers -----------------------------------------------------------------

IMAGE_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID",
                 "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                 "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE",
                 "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE"}


def cmd_images(engine: Engine, a: argparse.Namespace) -> int:
    filters = list(a.filter)
    if a.reference:
        filters.append(f"reference={a.reference}")
    imgs = engine.images(all=a.all, filters=filters)
    if a.quiet:
        seen: set[str] = set()
        for i in imgs:
            if i.id not in seen:
                seen.add(i.id)
                print(i.id if a.no_trunc else i.short_id)
        return 0
    records = []
    for i in imgs:
        for t in i.repo_tags or ("<none>:<none>",):
            repo, _, tag = t.rpartition(":")
            records.append({
                "Containers": "N/A",
                "CreatedAt": (i.created.astimezone().strftime("%Y-%m-%d %H:%M:%S %z %Z")
                              if i.created else ""),
                "CreatedSince": human_ago(i.created),
                "Digest": i.digest or "<none>",
                "ID": i.id if a.no_trunc else i.short_id,
                "Repository": repo,
                "SharedSize": "N/A",
                "Size": human_size(i.size),
                "Tag": tag,
                "UniqueSize": "N/A",
                "VirtualSize": human_size(i.size),
            })
    if a.format:
        format_records(a.format, records, IMAGE_HEADERS)
        return 0
    cols = ["Repository", "Tag"] + (["Digest"] if a.digests else []) + ["ID", "CreatedSince", "Size"]
    table([IMAGE_HEADERS[c] for c in cols], [[r[c] for c in cols] for r in records])
    return 0


def cmd_inspect(engine: Engine, a: argparse.Namespace) -> int:
    print_inspect([engine.image_inspect(ref) for ref in a.images], a.format)
    return 0


def cmd_rmi(engine: Engine, a: argparse.Namespace) -> int:
    from engine import EngineError
    code = 0
    for ref in a.images:
        try:
            for line in engine.rmi(ref, force=a.force):
                print(line)
        except EngineError as err:   # go on with the rest, like Docker
            sys.stderr.write(f"Error: {err}\n")
            code = err.exit_code
    return code


def cmd_tag(engine: Engine, a: argparse.Namespace) -> int:
    engine.tag(a.source, a.target)
    return 0


class _ProgressBar:
    """One-line progress on a terminal (stderr): layer n/m, bytes, a bar."""

    def __init__(self, out: TextIO | None = None, width: int = 30) -> None:
        self.out = out or sys.stderr
        self.last = 0.0
        self.width = width
        self.open_line = False      # a bar is drawn and its line not yet ended

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        final = p.total is not None and p.done >= p.total
        if now - self.last < 0.1 and not final:
            return
        self.last = now
        if p.total:
            frac = min(1.0, p.done / p.total)
            bar = "=" * int(frac * self.width)
            bar = (bar + ">").ljust(self.width)[: self.width]
            amount = f"{human_size(p.done)}/{human_size(p.total)}"
        else:
            bar = "-" * self.width
            amount = human_size(p.done)
        self.out.write(f"\r{p.what[:40]:<40} [{bar}] {amount:>18}")
        self.open_line = not final
        if final:
            self.out.write("\n")
        self.out.flush()

    def finish(self) -> None:
        """End the bar's line if the last update left it open."""
        if self.open_line:
            self.out.write("\n")
            self.out.flush()
            self.open_line = False


def _progress_bar(quiet: bool) -> _ProgressBar | None:
    return _ProgressBar() if (sys.stderr.isatty() and not quiet) else None


def cmd_load(engine: Engine, a: argparse.Namespace) -> int:
    progress = _progress_bar(a.quiet)
    try:
        if a.input:
            images = engine.load(a.input, progress=progress)
        else:
            if sys.stdin.isatty():
                raise InvalidArgument("load needs an archive", hint="use -i FILE or pipe a tar to stdin")
            images = engine.load(sys.stdin.buffer, progress=progress)
    finally:
        if progress:
            progress.finish()
    for i in images:      # repo_tags: only the names this archive gave
        if i.repo_tags:
            for t in i.repo_tags:
                print(f"Loaded image: {t}")
        else:
            print(f"Loaded image ID: {i.id}")
    return 0


def cmd_pull(engine: Engine, a: argparse.Namespace) -> int:
    progress = _progress_bar(a.quiet)
    try:
        info = engine.pull(a.image, progress=progress)
    finally:
        if progress:
            progress.finish()
    if not a.quiet:
        print(f"Digest: {info.digest}")
        print(f"Status: Downloaded image for {info.repo_tags[0] if info.repo_tags else info.id}")
    print(info.repo_tags[0] if info.repo_tags else info.id)
    return 0


def cmd_save(engine: Engine, a: argparse.Namespace) -> int:
    if a.output:
        engine.save(a.images, a.output, format=a.format)
    else:
        if sys.stdout.isatty():
            raise InvalidArgument("refusing to write an archive to a terminal",
                                  hint="use -o FILE or redirect stdout")
        engine.save(a.images, sys.stdout.buffer, format=a.format)
    return 0


def cmd_import(engine: Engine, a: argparse.Namespace) -> int:
    src = sys.stdin.buffer if a.file == "-" else a.file
    info = engine.import_image(src, a.reference, changes=a.change, message=a.message)
    print(info.id)
    return 0


def cmd_history(engine: Engine, a: argparse.Namespace) -> int:
    info = engine.image(a.image)
    entries = engine.history(a.image)
    if a.quiet:
        print(info.id if a.no_trunc else info.short_id)
        return 0
    rows = []
    for n, h in enumerate(entries):
        iid = (info.id if a.no_trunc else info.short_id) if n == 0 else "<missing>"
        by = h.created_by if a.no_trunc or len(h.created_by) <= 45 else h.created_by[:44] + "…"
        size = human_size(h.size) if a.human == "true" else str(h.size)
        rows.append([iid, human_ago(h.created), by, size, h.comment])
    table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], rows)
    return 0


def cmd_prune(engine: Engine, a: argparse.Namespace) -> int:
    if not a.force:
        what = "all images without at least one container" if a.all else "all dangling images"
        if not confirm(f"WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] "):
            return 0
    removed, freed = engine.image_prune(all=a.all)
    if removed:
        print("Deleted Images:")
        for r in removed:
            print(f"deleted: {r}")
        print()
    print(f"Total reclaimed space: {human_size(freed)}")
    return 0


def cmd_bootstrap(engine: Engine, a: argparse.Namespace) -> int:
    info = engine.bootstrap_busybox(a.tag)
    print(f"Built image: {', '.join(info.repo_tags)} {info.short_id}")
    return 0
