"""The services as child processes: started as users start them (`retrainer worker`,
`retrainer trainer`), waited for until they answer /health, stopped with SIGTERM and killed
after a deadline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

POLL_S = 0.1


class ServiceError(Exception):
    """A service exited, or did not answer in time; the message names it and its log."""


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal every process of the group `pid` leads."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return  # it exited between the check and the signal


@dataclass
class Service:
    """One child process in its own session, so that stopping it stops all it started."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    port: int
    """Where it answers /health (the worker's web port, the trainer's metrics port)."""
    stopped: bool = False
    """Asked to stop (or killed) by its owner: its exit is no failure."""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check(self) -> None:
        """Raise if the process has exited: nothing a caller waits for would come."""
        code = self.proc.poll()
        if code is not None:
            raise ServiceError(f"the {self.name} exited with code {code}; its log: {self.log}")

    def answers(self) -> bool:
        """Whether /health answers 200 now; raises if the process has exited."""
        self.check()
        url = f"http://127.0.0.1:{self.port}/health"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def wait_healthy(self, within_s: float) -> None:
        """Poll /health until it answers; raise at the deadline or when the process exits."""
        deadline = time.monotonic() + within_s
        while not self.answers():
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"the {self.name} did not answer /health on port {self.port} within "
                    f"{within_s:.0f} s; its log: {self.log}"
                )
            time.sleep(POLL_S)

    def kill(self, sig: signal.Signals = signal.SIGKILL, within_s: float = 60) -> None:
        """Send `sig` to the process group and wait for the process to end."""
        self.stopped = True
        signal_group(self.pid, sig)
        self.proc.wait(timeout=within_s)

    def stop(self, grace_s: float) -> str:
        """SIGTERM the group, wait up to `grace_s`, then SIGKILL; returns what happened."""
        if not self.terminate():
            return self.reap_exited()
        return self.reap(grace_s, grace_s)

    def terminate(self) -> bool:
        """SIGTERM the group if the process still runs; returns whether it did."""
        self.stopped = True
        if self.proc.poll() is not None:
            return False
        signal_group(self.pid, signal.SIGTERM)
        return True

    def reap_exited(self) -> str:
        """For a process that exited on its own: kill what it started too, and say so."""
        signal_group(self.pid, signal.SIGKILL)
        return f"{self.name} (pid {self.pid}) had exited with code {self.proc.returncode}"

    def reap(self, wait_s: float, grace_s: float) -> str:
        """Wait `wait_s` for a terminated process, then SIGKILL its group (`grace_s` is the
        deadline it was given, for the note)."""
        try:
            self.proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            signal_group(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            return f"{self.name} (pid {self.pid}) killed after {grace_s:.0f} s"
        return f"{self.name} (pid {self.pid}) stopped"


class Services:
    """The processes of one run, in the order they were started (a stopped one stays listed)."""

    def __init__(self, cwd: Path | None = None) -> None:
        self.cwd = cwd
        self.started: list[Service] = []

    def start(
        self,
        name: str,
        args: Sequence[str],
        env: Mapping[str, str],
        log: Path,
        port: int,
    ) -> Service:
        """Start `retrainer <args>` with exactly `env`; its output goes to `log`."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as handle:
            proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
                [sys.executable, "-m", "retrainer.cli", *args],
                env=dict(env),
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
                start_new_session=True,
            )
        service = Service(name, proc, log, port)
        self.started.append(service)
        return service

    def running(self) -> list[Service]:
        return [s for s in self.started if s.proc.poll() is None]

    def check(self) -> None:
        """Raise if a service has exited that was not asked to stop."""
        for service in self.started:
            if not service.stopped:
                service.check()

    def stop_all(self, grace_s: float) -> list[str]:
        """Stop every service not stopped yet, all at once: SIGTERM each, then wait for each
        until one deadline, SIGKILL what is left; returns what happened to each."""
        notes: list[str] = []
        asked: list[Service] = []
        for service in self.started:
            if service.stopped:
                continue
            if service.terminate():
                asked.append(service)
            else:
                notes.append(service.reap_exited())
        deadline = time.monotonic() + grace_s
        for service in asked:
            notes.append(service.reap(max(0.0, deadline - time.monotonic()), grace_s))
        return notes
