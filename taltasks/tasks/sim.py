"""sim.*: start, inspect and stop a simulated cluster in the background."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from taltasks.errors import InputError, OperationFailed
from taltasks.sim.addresses import MAX_CONTROL_PLANES, MAX_WORKERS
from taltasks.tasks._cli import TIMEOUT, Whole, command

COLLECTION = "sim"


@command(
    numbers={
        "control_planes": Whole(1, MAX_CONTROL_PLANES),
        "workers": Whole(0, MAX_WORKERS),
        "timeout": TIMEOUT,
    },
    help={
        "dir": "directory for the simulator's files (talosconfig, kubeconfig, record, log)",
        "control_planes": "number of control-plane nodes (default 3)",
        "workers": "number of worker nodes (default 3)",
        "talos_version": "Talos version the nodes run (default v1.12.0)",
        "kubernetes_version": "Kubernetes version (default v1.34.3)",
        "scenario": "scenario YAML (cluster size, operators, timings, faults)",
        "subnet": "loopback /24 to use, e.g. 127.0.10.0/24 (default: a free one)",
        "maintenance": "boot the nodes unconfigured, as a fresh cluster waiting for bootstrap",
        "repo": "simulate the cluster this checkout's talos/ folder describes (its nodes, addresses, CAs and configs)",
        "timeout": "seconds to wait for the simulator to be up",
    },
)
def up(
    c,
    dir,
    control_planes=None,
    workers=None,
    talos_version=None,
    kubernetes_version=None,
    scenario=None,
    subnet=None,
    maintenance=False,
    repo=None,
    timeout=60,
):
    """Start a simulated cluster in the background and write DIR/talosconfig."""
    directory = Path(dir).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    state = directory / "sim.json"
    if state.exists():
        raise InputError(
            f"a simulator already runs in {directory}", hint=f"stop it with `invoke sim.down --dir {dir}`"
        )
    if scenario:
        from taltasks.sim import scenario as sc

        sc.load(scenario)  # validate in the foreground: errors name file:line here
    args = [sys.executable, "-m", "taltasks.sim.serve", "--dir", str(directory)]
    for flag, value in (
        ("--control-planes", control_planes),
        ("--workers", workers),
        ("--talos-version", talos_version),
        ("--kubernetes-version", kubernetes_version),
        ("--scenario", str(Path(scenario).resolve()) if scenario else None),
        ("--subnet", subnet),
    ):
        if value is not None:
            args += [flag, str(value)]
    if maintenance:
        args.append("--maintenance")
    if repo:
        args += ["--repo", str(Path(repo).resolve())]
    log = open(directory / "sim.log", "ab")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + float(timeout)
    while not state.exists():
        if proc.poll() is not None:
            tail = (directory / "sim.log").read_text(errors="replace").strip().splitlines()[-5:]
            raise OperationFailed(
                "the simulator exited during start-up: " + " | ".join(tail), where=str(directory / "sim.log")
            )
        if time.monotonic() > deadline:
            proc.terminate()
            raise OperationFailed(
                f"the simulator did not come up within {timeout}s", where=str(directory / "sim.log")
            )
        time.sleep(0.05)
    _print_status(directory, as_json=False)
    print(f"\nexport TALOSCONFIG={directory / 'talosconfig'}")
    if (directory / "kubeconfig").exists():
        print(f"export KUBECONFIG={directory / 'kubeconfig'}")


def _print_status(directory: Path, *, as_json: bool) -> None:
    from taltasks.sim.control import SimControl
    from taltasks.ui.tables import print_rows

    status = SimControl(directory).status()
    if as_json:
        import json

        print(json.dumps(status, indent=2))
        return
    print_rows(
        status["nodes"],
        ["name", "ip", "role", "stage", "ready", "version", "faults"],
        title=f"cluster {status['cluster']} on {status['subnet']}"
        + (f", Kubernetes API {status['kubernetes_api']}" if status.get("kubernetes_api") else ""),
    )


@command(help={"dir": "the directory given to sim.up", "json": "print machine-readable status"})
def status(c, dir, json=False):
    """Show the nodes of a running simulator: stage, readiness, version, faults."""
    _print_status(Path(dir).resolve(), as_json=json)


@command(
    numbers={"timeout": TIMEOUT},
    help={"dir": "the directory given to sim.up", "timeout": "seconds to wait for it to exit"},
)
def down(c, dir, timeout=30):
    """Stop a simulator started with sim.up."""
    from taltasks.errors import ConnectionFailed
    from taltasks.sim.control import SimControl

    directory = Path(dir).resolve()
    ctl = SimControl(directory)
    pid = int(ctl.state["pid"])
    try:
        ctl.stop()
    except ConnectionFailed:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            (directory / "sim.json").unlink(missing_ok=True)
            print("simulator was not running; cleaned up its state file")
            return
    deadline = time.monotonic() + float(timeout)
    while (directory / "sim.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if (directory / "sim.json").exists():
        raise OperationFailed(
            f"the simulator (pid {pid}) did not stop within {timeout}s", where=str(directory)
        )
    print("simulator stopped")
