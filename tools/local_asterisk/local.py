"""Run the hotline's own local Asterisk: up, down, status, rx.

One instance per state folder. Asterisk's writable folders, its rendered
configuration, the prompts and the recordings all live under the hotline's
state folder; for an Asterisk in its own root that folder is bind-mounted into
the root at the same absolute path, so a recording path means the same thing
to Asterisk and to Python. `down` stops only the process that `up` started
(its pid and its private config path must both match).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.config import HotlineConfig
from tools.local_asterisk.certs import CertificateError, ensure_certificate
from tools.local_asterisk.provision import AsteriskInstall, ProvisionError, find_install, provision
from tools.local_asterisk.render import AsteriskLayout, RenderError, render

# A unix socket path must fit in 108 bytes; long state paths put the control socket in /tmp.
MAX_RUN_DIR = 80


class AsteriskError(Exception):
    """The local Asterisk could not be started, reached or stopped; one-line message."""


@dataclass(frozen=True)
class RunAs:
    """The unprivileged user Asterisk drops to after binding its ports."""

    name: str
    uid: int
    gid: int


def asterisk_user(install: AsteriskInstall) -> RunAs | None:
    """The unprivileged `asterisk` user Asterisk drops to; None when we are not root.

    The same user on both sides of a private root: the machine's `asterisk` user
    (created as Debian's package would, when missing) and the root's entry set to
    its uid and gid, so the recordings on the host belong to `asterisk`, not to
    whichever host account shares the root's number. A hotline started by an
    ordinary user runs Asterisk as that user already: nothing to drop.
    """
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("asterisk")
    except KeyError:
        done = subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
             "/nonexistent", "--shell", "/usr/sbin/nologin", "asterisk"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise AsteriskError(
                "Asterisk must not run as root, and the user 'asterisk' could not be "
                f"created: {done.stderr.strip() or done.returncode}"
            ) from None
        entry = pwd.getpwnam("asterisk")
    user = RunAs("asterisk", entry.pw_uid, entry.pw_gid)
    if install.root is not None:
        _match_ids(install.host_path(Path("/etc/passwd")), user, uid_field=2)
        _match_ids(install.host_path(Path("/etc/group")), user, uid_field=None)
    return user


def _match_ids(table: Path, user: RunAs, uid_field: int | None) -> None:
    """Give `asterisk` in a passwd (uid_field 2) or group file the machine's ids."""
    lines = table.read_text().splitlines()
    changed = False
    for i, line in enumerate(lines):
        fields = line.split(":")
        if fields[0] != user.name or len(fields) < 4:
            continue
        if uid_field is not None:
            wanted = [*fields[:2], str(user.uid), str(user.gid), *fields[4:]]
        else:
            wanted = [*fields[:2], str(user.gid), *fields[3:]]
        if wanted != fields:
            lines[i], changed = ":".join(wanted), True
    if changed:
        table.write_text("\n".join(lines) + "\n")


def hand_over(folder: Path, user: RunAs, *, always: bool) -> None:
    """Make folder (recursively) Asterisk's own, owner-only.

    `always` for the few files rewritten at every start (configuration, run
    folder); the big trees (logs, recordings) only when their top is not yet
    Asterisk's, so a million recordings are not walked at every start.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if not always and folder.stat().st_uid == user.uid:
        return
    for path in [folder, *folder.rglob("*")]:
        with contextlib.suppress(FileNotFoundError):
            os.chown(path, user.uid, user.gid, follow_symlinks=False)
            if not path.is_symlink():
                path.chmod(0o700 if path.is_dir() else 0o600)


# Asterisk gets no secrets through its environment (and func_env is not loaded anyway).
ASTERISK_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class Status:
    running: bool
    pid: int | None = None
    version: str = ""
    uptime: str = ""
    channels: str = ""


def port_in_use(host: str, port: int, kind: int) -> bool:
    """True when another program already holds host:port (TCP or UDP)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        if kind == socket.SOCK_STREAM:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def _unescape(text: str) -> str:
    """mountinfo writes spaces and the like as octal escapes (\\040)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def mount_table() -> list[tuple[str, str]]:
    """(source path inside its filesystem, mount point) for every mount we can see."""
    entries = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            entries.append((_unescape(fields[3]), _unescape(fields[4])))
    return entries


def is_mounted(target: Path) -> bool:
    """True if target is a mount point (os.path.ismount misses binds within one filesystem)."""
    return any(point == str(target) for _source, point in mount_table())


def read_ami_banner(host: str, port: int, timeout: float) -> str | None:
    """The AMI greeting line if an Asterisk manager answers on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            banner = conn.recv(256).decode("utf-8", "replace").strip()
    except OSError:
        return None
    return banner if banner.startswith("Asterisk Call Manager") else None


def outermost(folders: list[Path]) -> list[Path]:
    """The folders (resolved) that lie in none of the others: one bind mount covers the rest."""
    wanted = list(dict.fromkeys(p.resolve() for p in folders))
    return [p for p in wanted if not any(o != p and p.is_relative_to(o) for o in wanted)]


def mount_shared(install: AsteriskInstall, folders: list[Path]) -> list[Path]:
    """Bind-mount host folders into a private root at the same path; the targets newly mounted.

    A folder already mounted there (by another start sharing the root) is left
    as it is and not returned: whoever mounted it unmounts it.
    """
    if install.root is None:
        return []
    mounted = []
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        target = install.host_path(folder)
        target.mkdir(parents=True, exist_ok=True)
        if is_mounted(target):
            continue
        done = subprocess.run(
            ["mount", "--bind", str(folder), str(target)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise AsteriskError(
                f"cannot share {folder} with the Asterisk root: {done.stderr.strip()}"
            )
        mounted.append(target)
    return mounted


def unmount(targets: list[Path]) -> None:
    """Release bind mounts (lazily: a process still in them lets go when it ends)."""
    for target in targets:
        while is_mounted(target):
            done = subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)
            if done.returncode != 0:
                break


def launch(
    install: AsteriskInstall, conf: Path, console_log: Path, user: RunAs | None
) -> subprocess.Popen[bytes]:
    """Start Asterisk in the foreground on its private tree (`-C conf`), in a session of its own.

    It drops to `user` after binding its ports; its console goes to console_log.
    """
    drop = ("-U", user.name, "-G", user.name) if user is not None else ()
    argv = install.command("-f", "-n", "-q", *drop, "-C", str(conf))
    console_log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(console_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "ab") as log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=ASTERISK_ENV,
            umask=0o077,  # recordings, logs and CDRs: owner-only
        )


@dataclass(frozen=True)
class BootWatch:
    """How to tell a starting Asterisk is ready: its AMI, and `core waitfullybooted`."""

    ami_host: str
    ami_port: int
    timeout: float
    rx: Callable[..., str]  # rx(command, timeout=...) on this Asterisk's CLI


def wait_booted(proc: subprocess.Popen[bytes], watch: BootWatch, logs: str) -> None:
    """Wait until AMI answers and Asterisk is fully booted; AsteriskError naming logs if not."""
    deadline = time.monotonic() + watch.timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AsteriskError(
                f"Asterisk exited with status {proc.returncode} while starting; see {logs}"
            )
        if read_ami_banner(watch.ami_host, watch.ami_port, timeout=1.0):
            # AMI listens before the dialplan and PJSIP are loaded: wait for the rest.
            watch.rx("core waitfullybooted", timeout=max(1.0, deadline - time.monotonic()))
            return
        time.sleep(0.2)
    raise AsteriskError(
        f"Asterisk started but AMI did not answer on {watch.ami_host}:{watch.ami_port} within "
        f"{watch.timeout:.0f} s; see {logs}"
    )


class LocalAsterisk:
    """The local Asterisk instance that belongs to one hotline config."""

    def __init__(self, config: HotlineConfig) -> None:
        self.config = config
        self.state = config.state_dir / "asterisk"
        self.pidfile = self.state / "asterisk.pid"
        self.console_log = self.state / "log" / "console.log"

    # -- layout ---------------------------------------------------------------
    def _run_dir(self) -> Path:
        run_dir = self.state / "run"
        if len(str(run_dir)) <= MAX_RUN_DIR:
            return run_dir
        digest = hashlib.sha1(str(self.state).encode()).hexdigest()[:10]
        return Path("/tmp") / f"hotline-asterisk-{digest}"

    def layout(self, install: AsteriskInstall) -> AsteriskLayout:
        return AsteriskLayout(
            etc_dir=self.state / "etc",
            state_dir=self.state,
            run_dir=self._run_dir(),
            module_dir=install.module_dir(),
        )

    def _conf(self) -> Path:
        return self.state / "etc" / "asterisk.conf"

    def _shared_dirs(self) -> list[Path]:
        """Host folders Asterisk must see at the same path (outermost ones only)."""
        return outermost(
            [self.config.state_dir, self.config.recordings_dir, self.config.sounds_dir]
        )

    # -- process --------------------------------------------------------------
    def running_pid(self) -> int | None:
        """The pid of our Asterisk if it is alive (pid and private config both match)."""
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        if str(self._conf()).encode() not in cmdline:
            return None
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                os.waitpid(pid, os.WNOHANG)
                return None
        return pid

    def _install(self) -> AsteriskInstall:
        install = find_install(self.config)
        if install is None:
            raise AsteriskError("Asterisk is not provisioned yet: run `hotline asterisk up`")
        return install

    def rx(self, command: str, timeout: float = 15.0) -> str:
        """Run one Asterisk CLI command on our running instance and return its output."""
        if self.running_pid() is None:
            raise AsteriskError(f"the local Asterisk is not running (state {self.state})")
        argv = self._install().command("-C", str(self._conf()), "-rx", command)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise AsteriskError(f"asterisk -rx {command!r} failed: {done.stderr.strip()}")
        return done.stdout

    def _check_ports(self, linger: float = 5.0) -> None:
        """Our ports must be free; a port a crashed Asterisk held may take a moment to free."""
        ast, wss_port = self.config.asterisk, self.config.agents.wss_port
        checks = [
            ("asterisk.ami.port", ast.ami.host, ast.ami.port, socket.SOCK_STREAM, "TCP"),
            ("asterisk.sip.port", ast.sip.bind, ast.sip.port, socket.SOCK_DGRAM, "UDP"),
            ("agents.wss_port", ast.sip.bind, wss_port, socket.SOCK_STREAM, "TCP"),
        ]
        deadline = time.monotonic() + linger
        for field, host, port, kind, proto in checks:
            while port_in_use(host, port, kind) and time.monotonic() < deadline:
                time.sleep(0.2)
            if port_in_use(host, port, kind):
                raise AsteriskError(
                    f"{self.config.source}: {field}: {host}:{port}/{proto} is already in use "
                    "by another program; stop it or choose a free port"
                )

    def _hand_over(self, install: AsteriskInstall, layout: AsteriskLayout, user: RunAs) -> None:
        """Asterisk's folders become the asterisk user's: its configs, run folder, logs, files."""
        hand_over(layout.etc_dir, user, always=True)
        hand_over(self.state / "keys", user, always=True)  # the wss certificate and key
        hand_over(install.host_path(layout.run_dir), user, always=True)
        for sub in ("log", "spool", "db"):
            hand_over(self.state / sub, user, always=False)
        hand_over(self.config.recordings_dir, user, always=False)
        self.state.chmod(0o700)
        os.chown(self.state, user.uid, user.gid)

    def _mount_shared(self, install: AsteriskInstall) -> None:
        mount_shared(install, self._shared_dirs())

    def _unmount_shared(self, install: AsteriskInstall) -> None:
        if install.root is not None:
            unmount([install.host_path(folder) for folder in self._shared_dirs()])

    @staticmethod
    def prune_stale_mounts(install: AsteriskInstall) -> int:
        """Release binds into the root whose source folder was deleted (a crashed test run)."""
        if install.root is None:
            return 0
        pruned = 0
        prefix = str(install.root) + "/"
        for source, point in reversed(mount_table()):
            if point.startswith(prefix) and source.endswith("//deleted"):
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)
                pruned += 1
        return pruned

    def _install_say_sounds(self, install: AsteriskInstall) -> None:
        """The hotline's number files where Asterisk's own say looks (sounds/<lang>/digits).

        app_queue says a caller's position and expected wait with them. Only into
        the private root (a system Asterisk's sounds folder is the site's: see
        docs/agents.md); English is Asterisk's own. Copied atomically: workers that
        share the root may install at once.
        """
        if install.root is None:
            return
        for lang in self.config.prompts.languages:
            source = self.config.sounds_dir / lang / "say"
            if lang == "en" or not source.is_dir():
                continue
            target_root = install.host_path(Path("/usr/share/asterisk/sounds") / lang)
            for wav in source.rglob("*.wav"):
                target = target_root / wav.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists() and target.read_bytes() == wav.read_bytes():
                    continue
                partial = target.with_name(f".{target.name}.{os.getpid()}")
                shutil.copyfile(wav, partial)
                partial.chmod(0o644)
                partial.replace(target)

    def up(self, progress: Callable[[str], None] = lambda _line: None) -> int:
        """Start our Asterisk (or find it running) and wait until AMI answers; return its pid."""
        pid = self.running_pid()
        if pid is not None:
            return pid
        self._check_ports()
        try:
            install = provision(self.config, progress)
        except ProvisionError as exc:
            raise AsteriskError(str(exc)) from None
        for sub in ("etc", "log", "log/cdr-csv", "spool", "db", "run"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        self.config.recordings_dir.mkdir(parents=True, exist_ok=True)
        (self.config.sounds_dir / "moh").mkdir(parents=True, exist_ok=True)
        self.prune_stale_mounts(install)
        layout = self.layout(install)
        try:  # the browser phones' wss certificate: made once, a site's own one is kept
            ensure_certificate(self.state / "keys", self.config.asterisk.sip.bind)
        except CertificateError as exc:
            raise AsteriskError(str(exc)) from None
        try:
            render(self.config, layout, layout.etc_dir)
        except RenderError as exc:
            raise AsteriskError(str(exc)) from None
        self._mount_shared(install)
        self._install_say_sounds(install)
        install.host_path(layout.run_dir).mkdir(parents=True, exist_ok=True)
        user = asterisk_user(install)
        if user is not None:
            self._hand_over(install, layout, user)
        proc = launch(install, self._conf(), self.console_log, user)
        self.pidfile.write_text(f"{proc.pid}\n")
        ami = self.config.asterisk.ami
        wait_booted(
            proc,
            BootWatch(ami.host, ami.port, self.config.asterisk.start_timeout, self.rx),
            f"{self.console_log} and {self.state / 'log' / 'messages.log'}",
        )
        return proc.pid

    def down(self, timeout: float = 15.0) -> bool:
        """Stop our Asterisk if it runs; return whether one was stopped."""
        pid = self.running_pid()
        install = find_install(self.config)
        if pid is None:
            if install is not None:
                self._unmount_shared(install)
            return False
        with contextlib.suppress(AsteriskError, subprocess.TimeoutExpired):
            self.rx("core stop now", timeout=5)
        if not self._wait_gone(pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not self._wait_gone(pid, 5):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self._wait_gone(pid, 5)
        self.pidfile.unlink(missing_ok=True)
        if install is not None:
            self._unmount_shared(install)
        return True

    @staticmethod
    def _wait_gone(pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                reaped, _ = os.waitpid(pid, os.WNOHANG)
                if reaped == pid:
                    return True
            except ChildProcessError:
                # Not our child (started by an earlier `up`): poll its existence.
                if not Path(f"/proc/{pid}").exists():
                    return True
                stat = Path(f"/proc/{pid}/stat")
                with contextlib.suppress(OSError):
                    if stat.read_text().split()[2] == "Z":
                        return True
            time.sleep(0.1)
        return False

    def status(self) -> Status:
        """Whether our Asterisk runs, with its version, uptime and channel count."""
        pid = self.running_pid()
        if pid is None:
            return Status(running=False)
        version = self.rx("core show version").strip()
        uptime = self.rx("core show uptime").strip().replace("\n", "; ")
        channels = self.rx("core show channels count").strip().replace("\n", "; ")
        return Status(True, pid, version, uptime, channels)
