"""renovate.json extracts every version pin in talos/.

Fast tests run the config's own regexes in Python (named groups translated) against tables of
cases and against every ``# renovate:`` line in the repo, so a mistake shows without Node.
The slow test runs the real Renovate CLI (``--platform=local --dry-run=extract``: no network
lookups) on a copy of the repo and checks that it finds exactly the pins the YAML holds —
the same set the Python emulation finds.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from taltasks.model.envsubst import parse_env_file
from taltasks.toolcache import ToolUnavailable, cache_root, ensure_renovate
from testpaths import REPO_ROOT

CONFIG = json.loads((REPO_ROOT / "renovate.json").read_text())
# resolved at import, before the per-test HOME isolation: the Renovate install is shared
USER_CACHE = cache_root()
# which image each version key of the cluster definition is tracked as
DEP_OF_KEY = {
    "talosVersion": ("github-releases", "siderolabs/talos"),
    "kubernetesVersion": ("docker", "ghcr.io/siderolabs/kubelet"),
}
TALOS = "# renovate: datasource=github-releases depName=siderolabs/talos"
KUBE = "# renovate: datasource=docker depName=ghcr.io/siderolabs/kubelet"

Pin = tuple[str, str, str, str]  # (file relative to the repo, datasource, depName, value)


def _js_regex(pattern: str) -> re.Pattern[str]:
    """Renovate's JavaScript regex → Python: only named groups differ in what we use."""
    assert "(?<=" not in pattern and "(?<!" not in pattern, "RE2 has no lookbehind; keep it out"
    return re.compile(pattern.replace("(?<", "(?P<"))


def _file_pattern(pattern: str) -> re.Pattern[str]:
    assert pattern.startswith("/") and pattern.endswith("/"), f"use /regex/ file patterns: {pattern}"
    return re.compile(pattern[1:-1])


MANAGERS = [
    (
        [_file_pattern(p) for p in m["managerFilePatterns"]],
        [_js_regex(s) for s in m["matchStrings"]],
    )
    for m in CONFIG["customManagers"]
]


def emulate(text: str, path: str | None = None) -> list[dict]:
    """What the regex managers extract from ``text`` (all of them when ``path`` is None)."""
    found = []
    for patterns, regexes in MANAGERS:
        if path is not None and not any(p.search(path) for p in patterns):
            continue
        for rx in regexes:
            for m in rx.finditer(text):
                found.append({**{k: v for k, v in m.groupdict().items() if v}, "span": m.span()})
    return found


def expected_pins(root: Path, prefix: str = "") -> set[Pin]:
    """The version pins the cluster definition holds, read as YAML (independently of regexes)."""
    pins: set[Pin] = set()
    talenv = root / "talos" / "talenv.yaml"
    env = parse_env_file(talenv.read_text(), str(talenv))
    for key, value in env.items():
        if key.lower().endswith("version"):
            pins.add((f"{prefix}talos/talenv.yaml", *DEP_OF_KEY.get(key, ("?", "?")), value))
    talconfig = yaml.safe_load((root / "talos" / "talconfig.yaml").read_text())
    places = [talconfig, *talconfig.get("nodes", [])]
    for place in places:
        for key in DEP_OF_KEY:
            value = place.get(key)
            if isinstance(value, str) and "$" not in value:  # ${var} comes from talenv.yaml
                pins.add((f"{prefix}talos/talconfig.yaml", *DEP_OF_KEY[key], value))
    return pins


def emulated_pins(root: Path, files: list[str]) -> set[Pin]:
    return {
        (rel, d["datasource"], d["depName"], d["currentValue"])
        for rel in files
        for d in emulate((root / rel).read_text(), rel)
    }


def with_node_pins(talconfig: Path) -> None:
    """Per-node talosVersion pins in both comment styles (a node held back during an upgrade)."""
    text = talconfig.read_text()
    for host, pin in (
        ("cp-1", f"    {TALOS}\n    talosVersion: v1.11.3\n"),
        ("worker-2", f'    talosVersion: "v1.11.4" {TALOS}\n'),
    ):
        anchor = f"  - hostname: {host}\n"
        assert anchor in text
        text = text.replace(anchor, anchor + pin)
    talconfig.write_text(text)


# --- fast: the regexes themselves -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{TALOS}\ntalosVersion: v1.11.5\n", [("siderolabs/talos", "v1.11.5")]),
        (f"{KUBE}\r\nkubernetesVersion: v1.34.3\r\n", [("ghcr.io/siderolabs/kubelet", "v1.34.3")]),
        (
            f"  - hostname: a\n    {TALOS}\n    talosVersion: v1.12.1\n",
            [("siderolabs/talos", "v1.12.1")],
        ),
        (f"nodes:\n  {TALOS}\n  - talosVersion: 'v1.12.1'\n", [("siderolabs/talos", "v1.12.1")]),
        (f'talosVersion: "v1.12.0" {TALOS}\n', [("siderolabs/talos", "v1.12.0")]),
        (f"    talosVersion: v1.12.0  {TALOS}\n", [("siderolabs/talos", "v1.12.0")]),
        # an inline pin followed by another pin line: the comment does not claim the next line
        (
            f"talosVersion: v1.12.0 {TALOS}\nkubernetesVersion: v1.35.0 {KUBE}\n",
            [("siderolabs/talos", "v1.12.0"), ("ghcr.io/siderolabs/kubelet", "v1.35.0")],
        ),
        (f"{TALOS}\ntalosVersion: v1.11.5\n{KUBE}\nkubernetesVersion: v1.34.3\n", "both"),
        # not pins
        ("talosVersion: ${talosVersion}\n", []),
        ("talosVersion: v1.11.5\n", []),
        (f"{TALOS}\n\ntalosVersion: v1.11.5\n", []),
        (f"#   {TALOS}\n#   talosVersion: v1.11.5\n", []),
    ],
    ids=[
        "comment-above",
        "crlf",
        "per-node-indented",
        "list-item-quoted",
        "inline-quoted",
        "inline-indented",
        "inline-then-inline",
        "two-above",
        "variable",
        "no-comment",
        "blank-line-between",
        "commented-out",
    ],
)
def test_match_strings_extract_pins(text, expected):
    if expected == "both":
        expected = [("siderolabs/talos", "v1.11.5"), ("ghcr.io/siderolabs/kubelet", "v1.34.3")]
    found = sorted((d["depName"], d["currentValue"]) for d in emulate(text))
    assert found == sorted(expected)
    datasource = {dep: source for source, dep in DEP_OF_KEY.values()}
    assert all(d["datasource"] == datasource[d["depName"]] for d in emulate(text))


def test_versioning_is_captured_when_given():
    (dep,) = emulate(f"{TALOS} versioning=semver\ntalosVersion: v1.12.0\n")
    assert (dep["versioning"], dep["currentValue"]) == ("semver", "v1.12.0")


def _repo_files() -> list[str]:
    git = shutil.which("git")
    if git and (REPO_ROOT / ".git").exists():
        out = subprocess.run([git, "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
        return [f for f in out.stdout.splitlines() if (REPO_ROOT / f).is_file()]
    skip = {".git", ".venv", "__pycache__", "clusterconfig"}
    return [
        str(p.relative_to(REPO_ROOT))
        for p in REPO_ROOT.rglob("*")
        if p.is_file() and not skip & set(p.relative_to(REPO_ROOT).parts)
    ]


def test_every_renovate_comment_in_the_repo_is_matched():
    """Each ``# renovate:`` line outside tests/ is part of a match; outside docs it must also
    sit in a file the managers read (docs examples only have to be valid)."""
    annotated = 0
    for rel in _repo_files():
        if rel.startswith("tests/") or rel == "renovate.json":
            continue
        try:
            text = (REPO_ROOT / rel).read_text()
        except UnicodeDecodeError:
            continue
        lines = [m.start() for m in re.finditer(r"#[ \t]*renovate:[ \t]*datasource=", text)]
        if not lines:
            continue
        annotated += len(lines)
        is_doc = rel.endswith(".md")
        deps = emulate(text, None if is_doc else rel)
        for start in lines:
            line_no = text.count("\n", 0, start) + 1
            assert any(d["span"][0] <= start < d["span"][1] for d in deps), (
                f"{rel}:{line_no}: this `# renovate:` comment is not picked up by renovate.json"
                + ("" if is_doc or emulate(text) else " (is the file in managerFilePatterns?)")
            )
    assert annotated >= 2  # talenv.yaml's two pins at least


def test_every_pin_in_talos_is_extracted_by_the_regexes(tmp_path):
    files = ["talos/talenv.yaml", "talos/talconfig.yaml"]
    assert emulated_pins(REPO_ROOT, files) == expected_pins(REPO_ROOT)
    shutil.copytree(REPO_ROOT / "talos", tmp_path / "talos", ignore=shutil.ignore_patterns("clusterconfig"))
    with_node_pins(tmp_path / "talos" / "talconfig.yaml")
    pins = expected_pins(tmp_path)
    assert {p[3] for p in pins} == {"v1.14.7", "v1.37.2", "v1.11.3", "v1.11.4"}
    assert emulated_pins(tmp_path, files) == pins


def test_package_rules_name_the_tracked_images():
    """Rules must refer to what the managers extract, or they silently do nothing."""
    tracked = {dep for _, dep in DEP_OF_KEY.values()}
    ruled = {name for rule in CONFIG["packageRules"] for name in rule.get("matchPackageNames", [])}
    assert ruled == tracked
    kube_minor = [
        r
        for r in CONFIG["packageRules"]
        if "ghcr.io/siderolabs/kubelet" in r.get("matchPackageNames", [])
        and "minor" in r.get("matchUpdateTypes", [])
    ]
    assert kube_minor and kube_minor[0].get("dependencyDashboardApproval") is True
    assert not any("groupName" in r for r in CONFIG["packageRules"]), "Talos and Kubernetes are separate PRs"


# --- slow: the real Renovate CLI --------------------------------------------------------------


@pytest.fixture(scope="module")
def renovate():
    try:
        return ensure_renovate(USER_CACHE)
    except ToolUnavailable as exc:
        pytest.skip(f"Renovate CLI not available: {exc}")


def _git_repo(path: Path) -> None:
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed (Renovate's local platform reads a git checkout)")
    ident = ["-c", "user.email=test@taltasks.invalid", "-c", "user.name=test"]
    for cmd in (["init", "-q"], ["add", "-A"], [*ident, "commit", "-qm", "pins"]):
        subprocess.run([git, *cmd], cwd=path, check=True, capture_output=True)


@pytest.mark.slow
@pytest.mark.timeout(1200)  # the first run installs Renovate and Node (~1 min, ~530 MB)
def test_real_renovate_extracts_every_pin(renovate, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "talos", repo / "talos", ignore=shutil.ignore_patterns("clusterconfig"))
    shutil.copytree(repo / "talos", repo / "held-back" / "talos")
    with_node_pins(repo / "held-back" / "talos" / "talconfig.yaml")
    shutil.copy2(REPO_ROOT / "renovate.json", repo / "renovate.json")
    _git_repo(repo)
    env = renovate.env()
    env.update(LOG_LEVEL="info", RENOVATE_BASE_DIR=str(tmp_path / "renovate-base"))

    check = subprocess.run(
        [str(renovate.node), str(renovate.script.with_name("config-validator.js")), "--strict"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0 and "validated successfully" in check.stdout, check.stdout + check.stderr

    report = tmp_path / "report.json"
    run = subprocess.run(
        renovate.command(
            "--platform=local", "--dry-run=extract", "--report-type=file", f"--report-path={report}"
        ),
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    files = json.loads(report.read_text())["repositories"]["local"]["packageFiles"]["regex"]
    extracted = {
        (f["packageFile"], d["datasource"], d["depName"], d["currentValue"]) for f in files for d in f["deps"]
    }
    expected = expected_pins(repo) | expected_pins(repo / "held-back", prefix="held-back/")
    assert extracted == expected
    assert (
        "held-back/talos/talconfig.yaml",
        "github-releases",
        "siderolabs/talos",
        "v1.11.3",
    ) in extracted
    # and the Python emulation the fast tests rely on agrees with Renovate
    assert emulated_pins(repo, sorted({f["packageFile"] for f in files})) == extracted
