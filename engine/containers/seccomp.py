"""The default seccomp profile: an allowlist modelled on Docker's, written as our own data.

What it does, as Docker's default does (ENGINE-NOTES section 2):

* every syscall not listed fails with EPERM (``SCMP_ACT_ERRNO``, errno 1);
* about 350 ordinary syscalls are allowed to everyone;
* some are allowed only when the container holds the capability that the
  kernel would check anyway (``mount`` with CAP_SYS_ADMIN, ``reboot`` with
  CAP_SYS_BOOT, ...), so ``--cap-add`` does what users expect;
* some are never allowed (keyrings, userfaultfd, kexec, swap, io_uring, ...);
* ``clone`` may not create namespaces without CAP_SYS_ADMIN, and ``clone3``
  (whose flags live in memory a filter cannot read) answers ENOSYS so libc
  falls back to ``clone``;
* ``socket`` may not open AF_ALG or AF_VSOCK sockets, and ``personality``
  accepts only the harmless personas.

The result is the OCI ``linux.seccomp`` object; runc and crun compile it
with libseccomp. Syscall names unknown on an architecture are skipped by
the runtime, so one list serves 64- and 32-bit ABIs.

Rules that restrict one argument to several values are written as
separate entries with one condition each: runc turns several conditions on
the *same* argument of one entry into separate (OR-ed) rules, so "arg0 != 38
and arg0 != 40" in one entry would allow everything.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any, Iterable

# -- the allowlist, by what the calls are for ----------------------------------

_FILES = (
    "access", "chdir", "chmod", "chown", "chown32", "close", "close_range", "copy_file_range",
    "creat", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fchdir",
    "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64",
    "fdatasync", "flock", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync",
    "ftruncate", "ftruncate64", "futimesat", "getcwd", "getdents", "getdents64", "lchown",
    "lchown32", "link", "linkat", "_llseek", "lseek", "lstat", "lstat64", "mkdir", "mkdirat",
    "mknod", "mknodat", "name_to_handle_at", "newfstatat", "open", "openat", "openat2",
    "pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
    "readlink", "readlinkat", "readv", "rename", "renameat", "renameat2", "rmdir", "sendfile",
    "sendfile64", "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink",
    "symlinkat", "sync", "sync_file_range", "syncfs", "tee", "truncate", "truncate64", "umask",
    "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vmsplice",
    "write", "writev",
)

_XATTRS = (
    "fgetxattr", "flistxattr", "fremovexattr", "fsetxattr", "getxattr", "lgetxattr",
    "listxattr", "llistxattr", "lremovexattr", "lsetxattr", "removexattr", "setxattr",
)

_FDS_AND_EVENTS = (
    "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
    "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2",
    "fanotify_mark", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
    "ioctl", "_newselect", "pipe", "pipe2", "poll", "ppoll", "ppoll_time64", "pselect6",
    "pselect6_time64", "select", "signalfd", "signalfd4", "timerfd_create", "timerfd_gettime",
    "timerfd_gettime64", "timerfd_settime", "timerfd_settime64",
)

_ASYNC_IO = (
    "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
    "io_setup", "io_submit", "ioprio_get", "ioprio_set",
)

_MEMORY = (
    "brk", "madvise", "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret",
    "mincore", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mremap", "msync",
    "munlock", "munlockall", "munmap", "pkey_alloc", "pkey_free", "pkey_mprotect",
    "remap_file_pages",
)

_PROCESSES = (
    "execve", "execveat", "exit", "exit_group", "fork", "futex", "futex_requeue",
    "futex_time64", "futex_wait", "futex_waitv", "futex_wake", "get_robust_list",
    "get_thread_area", "getcpu", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
    "getrlimit", "getrusage", "getsid", "gettid", "kill", "pidfd_open", "pidfd_send_signal",
    "prctl", "prlimit64", "process_mrelease", "restart_syscall", "rseq", "seccomp",
    "set_robust_list", "set_thread_area", "set_tid_address", "setpgid", "setpriority",
    "setrlimit", "setsid", "tgkill", "tkill", "ugetrlimit", "vfork", "wait4", "waitid",
    "waitpid",
    # Open to all since kernel 4.8, where seccomp is re-checked after a
    # tracer changes a syscall, so ptrace can no longer bypass the filter.
    "ptrace", "process_vm_readv", "process_vm_writev",
)

_SIGNALS = (
    "alarm", "pause", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo", "sigaltstack", "sigprocmask", "sigreturn",
)

_TIME = (
    # adjtimex and clock_adjtime only read unless CAP_SYS_TIME, which the
    # kernel checks itself.
    "adjtimex", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64",
    "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64",
    "getitimer", "gettimeofday", "nanosleep", "setitimer", "time", "timer_create",
    "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
    "timer_settime64", "times",
)

_SCHEDULING = (
    "sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_getscheduler", "sched_rr_get_interval",
    "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam",
    "sched_setscheduler", "sched_yield",
)

_IDENTITY = (
    "capget", "capset", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32",
    "getgroups", "getgroups32", "getresgid", "getresgid32", "getresuid", "getresuid32",
    "getuid", "getuid32", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid",
    "setgid32", "setgroups", "setgroups32", "setregid", "setregid32", "setresgid",
    "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setuid", "setuid32",
)

_IPC = (
    "ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
    "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl",
    "msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop", "semtimedop",
    "semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget",
)

_NETWORK = (
    # socket itself is allowed below, per address family.
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt",
    "listen", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send",
    "sendmmsg", "sendmsg", "sendto", "setsockopt", "shutdown", "socketcall", "socketpair",
)

_SYSTEM = (
    "getrandom", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
    "sysinfo", "uname", "cachestat",
)

ALLOWED: tuple[str, ...] = (_FILES + _XATTRS + _FDS_AND_EVENTS + _ASYNC_IO + _MEMORY
                            + _PROCESSES + _SIGNALS + _TIME + _SCHEDULING + _IDENTITY + _IPC
                            + _NETWORK + _SYSTEM)

# Calls the kernel guards with a capability: allowed only with it, so a
# container without the capability gets a clean EPERM from the filter.
BY_CAPABILITY: dict[str, tuple[str, ...]] = {
    "SYS_ADMIN": (
        "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
        "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree",
        "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns",
        "syslog", "umount", "umount2", "unshare",
    ),
    "SYS_BOOT": ("reboot",),
    "SYS_CHROOT": ("chroot",),
    "SYS_MODULE": ("delete_module", "finit_module", "init_module"),
    "SYS_PACCT": ("acct",),
    "SYS_PTRACE": ("kcmp", "pidfd_getfd", "process_madvise"),
    "SYS_RAWIO": ("ioperm", "iopl"),
    "SYS_TIME": ("clock_settime", "clock_settime64", "settimeofday", "stime"),
    "SYS_TTY_CONFIG": ("vhangup",),
    "SYS_NICE": ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
    "SYSLOG": ("syslog",),
    "BPF": ("bpf",),
    "PERFMON": ("perf_event_open",),
    "DAC_READ_SEARCH": ("open_by_handle_at",),
}

# Never allowed, whatever the capabilities: kernel keyrings are not
# namespaced, userfaultfd and io_uring have been the source of many
# container escapes, the rest act on the whole host.
NEVER: tuple[str, ...] = (
    "_sysctl", "add_key", "io_uring_enter", "io_uring_register", "io_uring_setup",
    "kexec_file_load", "kexec_load", "keyctl", "nfsservctl", "pivot_root", "request_key",
    "swapoff", "swapon", "sysfs", "uselib", "userfaultfd", "ustat", "vm86", "vm86old",
)

_BY_ARCH: dict[str, tuple[str, ...]] = {
    "x86": ("arch_prctl", "modify_ldt"),
    "arm": ("arm_fadvise64_64", "arm_sync_file_range", "breakpoint", "cacheflush", "set_tls",
            "sync_file_range2"),
}

# Host machine -> (libseccomp architectures, syscall family).
ARCHITECTURES: dict[str, tuple[tuple[str, ...], str]] = {
    "x86_64": (("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"), "x86"),
    "amd64": (("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"), "x86"),
    "i686": (("SCMP_ARCH_X86",), "x86"),
    "aarch64": (("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"), "arm"),
    "arm64": (("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"), "arm"),
    "armv7l": (("SCMP_ARCH_ARM",), "arm"),
}

# CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
# CLONE_NEWPID | CLONE_NEWNET: clone is allowed only when none is set.
CLONE_NAMESPACE_FLAGS = 0x7E020000

# Address families a container may not open (linux/socket.h).
AF_ALG = 38
AF_VSOCK = 40
# The personas personality() may switch to: PER_LINUX, PER_LINUX32,
# UNAME26, PER_LINUX32|UNAME26, and 0xffffffff (query the current one).
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)


def _cap_name(cap: str) -> str:
    c = cap.strip().upper()
    return c[4:] if c.startswith("CAP_") else c


def x32_abi(proc: Path = Path("/proc"), boot: Path = Path("/boot"),
            release: str | None = None, sys_root: Path = Path("/sys")) -> bool:
    """Whether the running kernel serves x32 system calls.

    Each ABI in a filter costs the runtime ~6 ms at every container start
    (runc builds the filter for each), and most x86_64 kernels have no x32:
    built without it, or (Debian) built with it off unless booted with
    ``syscall.x32=y``. Read from the switch itself
    (``/sys/module/syscall/parameters/x32``) where there is one, else the
    kernel's build config (``/proc/config.gz``, else
    ``/boot/config-<release>``) and command line; when nothing says, the
    answer is True, so the filter covers x32 as Docker's does.
    """
    import gzip
    try:                  # the switch itself, where the kernel has x32 built in
        return (sys_root / "module" / "syscall" / "parameters" / "x32").read_text().strip() in ("Y", "1")
    except OSError:
        pass
    try:
        config = gzip.decompress((proc / "config.gz").read_bytes()).decode(errors="replace")
    except (OSError, EOFError, ValueError):
        try:
            config = (boot / f"config-{release or os.uname().release}").read_text(errors="replace")
        except OSError:
            return True
    lines = set(config.splitlines())
    if "CONFIG_X86_X32_ABI=y" not in lines and "CONFIG_X86_X32=y" not in lines:
        return False
    try:
        cmdline = (proc / "cmdline").read_text().split()
    except OSError:
        return True
    enabled = "CONFIG_X86_X32_DISABLED=y" not in lines
    for word in cmdline:                      # the last one wins, as the kernel reads them
        if word == "syscall.x32":
            enabled = True
        elif word.startswith("syscall.x32="):
            value = word.partition("=")[2].lower()
            if value in ("y", "yes", "1", "on", "true"):
                enabled = True
            elif value in ("n", "no", "0", "off", "false"):
                enabled = False
    return enabled


def default_profile(caps: Iterable[str], *, arch: str | None = None,
                    x32: bool = True) -> dict[str, Any]:
    """The default OCI ``linux.seccomp`` object for a container with ``caps``.

    Args:
        caps: the container's capabilities, as ``CAP_SYS_ADMIN`` or ``SYS_ADMIN``.
        arch: the host machine (``uname -m`` form); default: this host.
            An unknown machine gets no ``architectures`` (the native ABI only).
        x32: whether the kernel serves x32 calls (:func:`x32_abi`); if not,
            the filter leaves that ABI out (its calls fail either way).

    Returns:
        A JSON-ready dict for ``config.json``'s ``linux.seccomp``.
    """
    have = {_cap_name(c) for c in caps}
    machine = (arch or os.uname().machine).lower()
    arches, family = ARCHITECTURES.get(machine, ((), ""))
    if not x32:
        arches = tuple(a for a in arches if a != "SCMP_ARCH_X32")

    allowed: list[str] = list(ALLOWED) + list(_BY_ARCH.get(family, ()))
    for cap, calls in BY_CAPABILITY.items():
        if cap in have:
            allowed.extend(calls)
    never = set(NEVER)
    names = sorted({n for n in allowed if n not in never})

    syscalls: list[dict[str, Any]] = []
    if "SYS_ADMIN" not in have:
        # These must not also appear unconditionally, or the unconditional
        # rule would win.
        names = [n for n in names if n not in ("clone", "clone3")]
    syscalls.append({"names": names, "action": "SCMP_ACT_ALLOW"})

    if "SYS_ADMIN" not in have:
        syscalls.append({
            "names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0,
                      "op": "SCMP_CMP_MASKED_EQ"}],
        })
        syscalls.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO",
                         "errnoRet": errno.ENOSYS})

    # socket(): every family but AF_ALG and AF_VSOCK, as three OR-ed ranges.
    for op, value in (("SCMP_CMP_LT", AF_ALG), ("SCMP_CMP_EQ", AF_ALG + 1),
                      ("SCMP_CMP_GT", AF_VSOCK)):
        syscalls.append({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                         "args": [{"index": 0, "value": value, "op": op}]})

    for persona in PERSONALITIES:
        syscalls.append({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                         "args": [{"index": 0, "value": persona, "op": "SCMP_CMP_EQ"}]})

    profile: dict[str, Any] = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": errno.EPERM,
        "syscalls": syscalls,
    }
    if arches:
        profile["architectures"] = list(arches)
    return profile
