"""The local stacks running on this machine, and how a command finds the one it means.

Each stack writes `.devstack/state-<API port>.json` (its URLs, ports, pid and demo token) once
it is ready, and removes it when it stops. `enqueue` picks the stack by `--port`, or the only
one running; it refuses to guess between two, and says so when a state file belongs to a stack
that has died (its pid gone or its API port closed).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .template import ROOT


def state_dir() -> Path:
    """Where the stacks describe themselves (`DEVSTACK_DIR` moves it, for tests)."""
    return Path(os.environ.get("DEVSTACK_DIR") or ROOT / ".devstack")


def state_path(api_port: int, directory: Path | None = None) -> Path:
    return (directory or state_dir()) / f"state-{api_port}.json"


def write(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a reader sees the whole state or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(state, indent=2))
    partial.replace(path)


def remove(path: Path, pid: int | None = None) -> None:
    """Remove a state file (only if it is still the one of `pid`, when given)."""
    with contextlib.suppress(OSError, ValueError):
        if pid is None or json.loads(path.read_text()).get("pid") == pid:
            path.unlink()


def read(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(timeout)
        return probe.connect_ex((host, port)) == 0


@dataclass
class Found:
    path: Path
    state: dict[str, Any]

    @property
    def api_port(self) -> int:
        return int(self.state.get("ports", {}).get("api") or self.state["apiUrl"].rsplit(":", 1)[1])

    def problem(self) -> str | None:
        """Why this stack cannot be used, or None when it is up."""
        pid = self.state.get("pid")
        if pid is not None and not pid_alive(pid):
            return f"its process {pid} is gone"
        if not port_open("127.0.0.1", self.api_port):
            return f"nothing answers on its API port {self.api_port}"
        return None


def every(directory: Path | None = None) -> list[Found]:
    found = []
    for path in sorted((directory or state_dir()).glob("state-*.json")):
        state = read(path)
        if state and "apiUrl" in state:
            found.append(Found(path, state))
    return found


def owner_of(port: int, directory: Path | None = None) -> Found | None:
    """The running local stack that holds `port` (as its API, moto or simulator port), if any."""
    for stack in every(directory):
        if port in (stack.state.get("ports") or {}).values() and stack.problem() is None:
            return stack
    return None


class NotFound(Exception):
    """No usable stack: the message says why and what to do."""


def find(port: int | None = None, state_file: Path | None = None, directory: Path | None = None) -> dict[str, Any]:
    """The state of the stack a command means: `state_file`, the one on `port`, or the only one running."""
    if state_file is not None:
        state = read(state_file)
        if state is None:
            raise NotFound(f"No local stack state at {state_file}: start one with `make run`.")
        stack = Found(state_file, state)
    elif port is not None:
        path = state_path(port, directory)
        state = read(path)
        if state is None:
            others = [s.api_port for s in every(directory) if s.problem() is None]
            hint = f" Running: on port(s) {', '.join(map(str, others))}." if others else ""
            raise NotFound(f"No local stack on port {port}: start it with `make run PORT={port}`.{hint}")
        stack = Found(path, state)
    else:
        stacks = every(directory)
        alive = [s for s in stacks if s.problem() is None]
        dead = [s for s in stacks if s.problem() is not None]
        if len(alive) > 1:
            listed = ", ".join(f"{s.api_port} (pid {s.state.get('pid')})" for s in alive)
            raise NotFound(
                f"{len(alive)} local stacks are running, on ports {listed}: choose one with --port {alive[0].api_port}."
            )
        if not alive:
            gone = "".join(
                f"\nThe stack on port {s.api_port} has stopped ({s.problem()}); removed its {s.path.name}."
                for s in dead
            )
            for s in dead:
                remove(s.path)
            raise NotFound(f"No local stack is running: start one with `make run`.{gone}")
        return alive[0].state
    problem = stack.problem()
    if problem:
        raise NotFound(
            f"The local stack on port {stack.api_port} has stopped ({problem}): "
            f"start it again with `make run PORT={stack.api_port}`."
        )
    return stack.state
