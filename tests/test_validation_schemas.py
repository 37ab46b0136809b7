"""The official schemas ship inside the package; what `configure` writes validates against
each contract's own schema; nothing depends on a ../shared folder beside the checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from configure_support import LENIENT_PATCH, add_global_patch, copy_demo, edit
from taltasks.machineconfig.encode import load_documents
from taltasks.machineconfig.validate.typemodel import SCHEMA_PACKAGE, schema_path, shipped_contracts
from taltasks.workflows.configure import OUTPUT_DIR, configure
from testpaths import REPO_ROOT

LENIENT = LENIENT_PATCH + "  allowSchedulingOnMasters: true\n"

# The same settings in the documents of contract 1.14, where the v1alpha1 form of most of
# them is refused next to the documents the 1.14 generator writes.
LENIENT_1_14 = """\
apiVersion: v1alpha1
kind: SysctlConfig
params:
  vm.max_map_count: 262144
---
apiVersion: v1alpha1
kind: KubeletConfig
extraArgs:
  rotate-server-certificates: true
"""
LENIENT_1_14_CONTROL_PLANE = """\
apiVersion: v1alpha1
kind: KubeAPIServerConfig
extraArgs:
  enable-aggregator-routing: true
"""

# What each contract's official schema leaves out although Talos decodes it and taltasks
# (like talosctl) writes it: (document, path, key) as jsonschema reports it.
PERSIST = ("v1alpha1", "", "persist")  # written by Talos's own generator; hidden (docgen:nodoc)
MASTERS = ("v1alpha1", "cluster", "allowSchedulingOnMasters")  # read by Talos, hidden likewise
KNOWN_OMISSIONS: dict[str, set[tuple[str, str, str]]] = {
    "1.8": {PERSIST, MASTERS},
    "1.9": {PERSIST, MASTERS},
    "1.10": {PERSIST, MASTERS},
    "1.11": {PERSIST, MASTERS},
    "1.12": {PERSIST, MASTERS},
    "1.13": {PERSIST, MASTERS},
    # the rc schema names UnattendedInstallConfig's kind `UnattendedInstall` (its content
    # is checked against that definition)
    "1.14": {PERSIST, ("UnattendedInstallConfig", "(kind)", "named UnattendedInstall in the schema")},
}
SCHEMA_KIND_NAMES = {"UnattendedInstallConfig": "UnattendedInstall"}
# (Talos, Kubernetes) per contract, inside each one's support matrix
VERSIONS = {
    "1.8": ("v1.8.4", "v1.31.4"),
    "1.9": ("v1.9.6", "v1.32.3"),
    "1.10": ("v1.10.9", "v1.33.2"),
    "1.11": ("v1.11.5", "v1.34.3"),
    "1.12": ("v1.12.4", "v1.34.3"),
    "1.13": ("v1.13.2", "v1.34.3"),
    "1.14": ("v1.14.0", "v1.34.3"),
}


def configured_demo(root: Path, contract: str) -> Path:
    """The demo at ``contract`` with unquoted numbers/booleans where Talos wants strings."""
    talos, kubernetes = VERSIONS[contract]
    demo = copy_demo(root)
    edit(demo / "talos/talenv.yaml", "talosVersion: v1.11.5", f"talosVersion: {talos}")
    edit(demo / "talos/talenv.yaml", "kubernetesVersion: v1.34.3", f"kubernetesVersion: {kubernetes}")
    talconfig = demo / "talos/talconfig.yaml"
    if contract == "1.14":  # the demo's patches are v1alpha1-form: use the documents instead
        text = talconfig.read_text()
        for line in (
            '  - "@./patches/global/machine-kubelet.yaml"\n',
            '    - "@./patches/controller/cluster.yaml"\n',
            '    - "@./patches/controller/machine-features.yaml"\n',
            '    - "@./patches/worker/machine-kernel.yaml"\n',
        ):
            text = text.replace(line, "")
        text = text.replace(
            '  - "@./patches/global/machine-sysctls.yaml"', '  - "@./patches/global/lenient.yaml"'
        )
        text = text.replace(
            "controlPlane:\n  patches:\n",
            'controlPlane:\n  patches:\n    - "@./patches/controller/lenient.yaml"\n',
        )
        text = text.replace("worker:\n  patches:\n", "worker:\n")
        talconfig.write_text(text)
        (demo / "talos/patches/global/lenient.yaml").write_text(LENIENT_1_14)
        (demo / "talos/patches/controller/lenient.yaml").write_text(LENIENT_1_14_CONTROL_PLANE)
    else:
        add_global_patch(demo, "lenient.yaml", LENIENT)
    configure(demo)
    return demo


def schema_problems(schema: dict, doc: dict) -> set[tuple[str, str, str]]:
    """jsonschema's findings for one document, validated against its own definition."""
    from jsonschema import Draft202012Validator

    by_kind = {}
    for ref in schema["oneOf"]:
        name = ref["$ref"].rsplit("/", 1)[-1]
        kind = ((schema["$defs"][name].get("properties") or {}).get("kind") or {}).get("enum")
        if kind:
            by_kind[kind[0]] = name
    label = doc.get("kind") or "v1alpha1"
    definition = "v1alpha1.Config" if label == "v1alpha1" else by_kind.get(label)
    out = set()
    if definition is None and SCHEMA_KIND_NAMES.get(label) in by_kind:
        # validate the content against the definition the schema files under another name
        out.add((label, "(kind)", f"named {SCHEMA_KIND_NAMES[label]} in the schema"))
        definition = by_kind[SCHEMA_KIND_NAMES[label]]
        doc = {**doc, "kind": SCHEMA_KIND_NAMES[label]}
    assert definition, f"the schema has no definition for kind {label}"
    validator = Draft202012Validator({"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"})
    for err in validator.iter_errors(doc):
        where = ".".join(map(str, err.absolute_path))
        if err.validator == "additionalProperties":
            known = set((err.schema.get("properties") or {}).keys())
            out |= {(label, where, key) for key in err.instance if key not in known}
        else:
            out.add((label, where, err.message))
    return out


@pytest.mark.parametrize("contract", list(KNOWN_OMISSIONS))
def test_every_written_document_validates_against_its_contracts_official_schema(tmp_path, contract):
    demo = configured_demo(tmp_path / "repo", contract)
    schema = json.loads(Path(schema_path(tuple(map(int, contract.split("."))))).read_text())
    assert schema["$id"] == f"https://talos.dev/v{contract}/schemas/config.schema.json"
    problems: set[tuple[str, str, str]] = set()
    kinds = set()
    files = sorted((demo / OUTPUT_DIR).glob("demo-*.yaml"))
    assert len(files) == 6
    for path in files:
        for doc in load_documents(path.read_bytes()):
            kinds.add(doc.get("kind") or "v1alpha1")
            problems |= schema_problems(schema, doc)
    assert problems == KNOWN_OMISSIONS[contract]
    if tuple(map(int, contract.split("."))) >= (1, 12):
        assert "HostnameConfig" in kinds  # multi-document configs are checked kind by kind
    if contract == "1.14":
        assert {"SysctlConfig", "KubeletConfig", "KubeAPIServerConfig", "UnattendedInstallConfig"} <= kinds
        sysctls = next(
            d for p in files for d in load_documents(p.read_bytes()) if d.get("kind") == "SysctlConfig"
        )
        assert sysctls["params"]["vm.max_map_count"] == "262144"


def test_shipped_schemas_are_the_reference_copies(upstream_data):
    for contract in ("1.11", "1.12", "1.13", "1.14"):
        shipped = Path(schema_path(tuple(map(int, contract.split(".")))))
        reference = upstream_data / f"talos-config.schema.v{contract}.json"
        assert shipped.read_bytes() == reference.read_bytes(), contract


def test_schemas_are_package_data_with_their_sources():
    from importlib import resources

    folder = resources.files(SCHEMA_PACKAGE)
    sources = folder.joinpath("SOURCES.md").read_text(encoding="utf-8")
    for major, minor in shipped_contracts():
        name = f"talos-config.schema.v{major}.{minor}.json"
        assert folder.joinpath(name).is_file()
        assert f"| {name} | website/content/v{major}.{minor}/schemas/config.schema.json |" in sources
    assert "talos-deprecations.json" in sources
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    assert '"SOURCES.md"' in pyproject  # shipped in wheels too, not only in this checkout


PROBE = """
import json, sys, taltasks
from taltasks.workflows.configure import configure
plan = configure(sys.argv[1])
print(json.dumps({"package": taltasks.__file__, "warnings": plan.warnings}))
"""


def _scratch_checkout(base: Path, *, shared: bool) -> Path:
    """A checkout (package code + the demo, with a patch Talos accepts and the old schema
    check refused) at base/checkout, with or without base/shared/reference/upstream."""
    checkout = base / "checkout"
    shutil.copytree(
        REPO_ROOT / "taltasks", checkout / "taltasks", ignore=shutil.ignore_patterns("__pycache__")
    )
    demo = copy_demo(checkout)
    add_global_patch(demo, "lenient.yaml", LENIENT)
    if shared:
        # schema files that reject everything: reading them would change the result
        upstream = base / "shared" / "reference" / "upstream"
        upstream.mkdir(parents=True)
        for major, minor in shipped_contracts():
            bogus = {
                "$defs": {"v1alpha1.Config": {"type": "object", "additionalProperties": False}},
                "oneOf": [],
            }
            (upstream / f"talos-config.schema.v{major}.{minor}.json").write_text(json.dumps(bogus))
    return checkout


def test_configure_gives_the_same_result_with_and_without_shared_beside_the_checkout(tmp_path):
    results = []
    for shared in (False, True):
        base = tmp_path / ("with" if shared else "without")
        checkout = _scratch_checkout(base, shared=shared)
        env = {**os.environ, "PYTHONPATH": str(checkout)}
        if shared:
            env["TALTASKS_SCHEMA_DIR"] = str(base / "shared" / "reference" / "upstream")
        proc = subprocess.run(
            [sys.executable, "-c", PROBE, str(checkout)],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert Path(out["package"]).is_relative_to(checkout)  # the scratch copy's code ran
        # the machine configs (talosconfig holds a fresh client key each run)
        files = {p.name: p.read_bytes() for p in sorted((checkout / OUTPUT_DIR).glob("demo-*.yaml"))}
        results.append((files, out["warnings"]))
    (files_without, warnings_without), (files_with, warnings_with) = results
    assert files_without == files_with and warnings_without == warnings_with
    assert len(files_without) == 6
    assert any("allowSchedulingOnMasters" in w for w in warnings_without)
