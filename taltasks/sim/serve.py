"""Run a simulated world in the foreground until stopped (what ``sim.up`` starts).

    python -m taltasks.sim.serve --dir DIR [--scenario FILE] [--control-planes N] [--workers N]
                                 [--talos-version V] [--kubernetes-version V] [--subnet S] [--maintenance]

Writes ``DIR/talosconfig`` (and ``DIR/kubeconfig`` when Kubernetes runs), ``DIR/record.jsonl``
and finally ``DIR/sim.json`` (pid + control socket) once everything listens — its presence is
the readiness signal. SIGTERM, SIGINT or ``POST /stop`` shut it down cleanly.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from taltasks.errors import TaltasksError


def build_scenario(ns: argparse.Namespace):
    from taltasks.sim import scenario as sc

    scenario = sc.load(ns.scenario) if ns.scenario else sc.Scenario()
    if ns.control_planes is not None:
        scenario.control_planes = ns.control_planes
    if ns.workers is not None:
        scenario.workers = ns.workers
    if ns.talos_version:
        scenario.talos_version = ns.talos_version
    if ns.kubernetes_version:
        scenario.kubernetes_version = ns.kubernetes_version
    if ns.maintenance:
        scenario.maintenance = True
    if ns.name:
        scenario.name = ns.name
    return scenario


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="taltasks.sim.serve")
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--scenario", type=Path)
    parser.add_argument("--control-planes", type=int)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--talos-version")
    parser.add_argument("--kubernetes-version")
    parser.add_argument("--subnet")
    parser.add_argument("--name")
    parser.add_argument("--maintenance", action="store_true")
    parser.add_argument("--repo", type=Path, help="simulate the cluster this repository's talos/ describes")
    ns = parser.parse_args(argv)

    from taltasks.sim.control import ControlServer
    from taltasks.sim.world import SimWorld, state_json

    try:
        scenario = build_scenario(ns)
        if ns.repo:
            world = SimWorld.from_repo(ns.repo, scenario, directory=ns.dir).start()
        else:
            world = SimWorld(scenario, directory=ns.dir, subnet=ns.subnet).start()
    except TaltasksError as exc:
        print(f"error: {exc.render()}", file=sys.stderr)
        return exc.exit_code
    stopped = threading.Event()

    def stop() -> None:
        stopped.set()

    control = ControlServer(world, on_stop=stop)
    control.start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop())
    state = ns.dir / "sim.json"
    tmp = state.with_suffix(".tmp")
    tmp.write_text(state_json(world, pid=os.getpid(), control=control.address))
    os.replace(tmp, state)
    print(f"simulator up: {len(world.talos.nodes)} nodes on {world.subnet}", flush=True)
    while not stopped.wait(0.5):
        pass
    control.stop()
    world.stop()
    state.unlink(missing_ok=True)
    print("simulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
