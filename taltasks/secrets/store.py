"""The cluster secrets bundle on disk: ``talos/talsecret.sops.yaml``.

The rules that protect a cluster from talhelper's worst footgun (secrets silently
regenerated when the file is missing or misnamed, locking the operator out):

* an existing file is always used — never replaced;
* a missing file is created only when the caller says so explicitly (``create=True``,
  which ``invoke configure`` sets after a confirmation or ``--yes``);
* a file that does not decrypt or does not parse is an error naming the file.

talhelper reads the secrets from whichever of ``talsecret.yaml``, ``talsecret.sops.yaml``,
``talsecret.yml`` or ``talsecret.sops.yml`` exists, decrypting it when its *content* is
SOPS-encrypted, then substitutes ``${VAR}``s in it. So does taltasks (preferring
``talsecret.sops.yaml``, the name it creates), with one rule more: a file that is not
encrypted is read only when every secret in it is a ``${VAR}`` reference (secrets kept in
a password manager and exported by ``op run``, ``doppler run`` …) — real key material in
clear text is refused.

The bundle is encrypted through sops' stdin; the plaintext never touches the disk. After
writing, the file is decrypted again and compared, so a broken .sops.yaml cannot leave a
file nobody can open.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taltasks.errors import InputError
from taltasks.machineconfig.contract import VersionContract
from taltasks.machineconfig.secrets import SecretsBundle
from taltasks.secrets import age, sops

SECRET_FILE = "talos/talsecret.sops.yaml"
# talhelper's names, ours first (a repository normally has exactly one of them)
TALHELPER_NAMES = (SECRET_FILE, "talos/talsecret.yaml", "talos/talsecret.sops.yml", "talos/talsecret.yml")
# `$VAR` / `${VAR}` (an empty default is fine; a default value would be the secret in clear text)
_PLACEHOLDER = re.compile(r"^\$\{?[A-Za-z_][A-Za-z0-9_]*(?::?[-=+])?\}?$")


@dataclass
class SecretStore:
    root: Path
    relpath: str = SECRET_FILE

    @property
    def path(self) -> Path:
        return self.root / self.relpath

    def found(self) -> str | None:
        """The secrets file present: ours, else one of talhelper's other names."""
        names = TALHELPER_NAMES if self.relpath == SECRET_FILE else (self.relpath,)
        return next((n for n in names if (self.root / n).is_file()), None)

    def exists(self) -> bool:
        return self.found() is not None

    def _env(self) -> dict[str, str]:
        return age.sops_environment(self.root)

    def load(self, env: Mapping[str, str] | None = None) -> SecretsBundle:
        """The bundle, decrypted; ``${VAR}``s substituted from ``env`` (talenv values and the
        environment, default the environment)."""
        from taltasks.model.envsubst import substitute_file
        from taltasks.secrets.bycontent import is_encrypted

        found = self.found()
        if found is None:
            raise InputError(
                "the cluster secrets file does not exist",
                where=self.relpath,
                hint="for a NEW cluster run `invoke configure --yes` to create it; for an existing cluster "
                "restore it from git — new secrets would lock you out of running nodes",
            )
        path = self.root / found
        raw = path.read_text(encoding="utf-8")
        if found == SECRET_FILE or is_encrypted(raw):
            text = sops.decrypt(path, root=self.root, display=found, env=self._env()).decode()
        elif _only_placeholders(raw):
            text = raw
        else:
            raise InputError(
                f"found an unencrypted {found} holding secrets; taltasks reads secrets only encrypted",
                where=found,
                hint=f"cd {self.root} && sops encrypt --filename-override {SECRET_FILE} {found} > {SECRET_FILE}"
                f" && rm {found}",
            )
        if "$" in text:
            text = substitute_file(text, os.environ if env is None else env, found)
        return SecretsBundle.from_yaml(text, where=found)

    def create(self, contract: VersionContract, *, bundle: SecretsBundle | None = None) -> SecretsBundle:
        """Generate (or take) a bundle, encrypt it into the file, verify it reads back."""
        if self.exists():
            raise InputError(
                "refusing to overwrite the existing secrets file",
                where=self.relpath,
                hint="existing secrets are always reused; delete the file yourself only for a new cluster",
            )
        bundle = bundle or SecretsBundle.generate(contract)
        encrypted = sops.encrypt(bundle.to_yaml().encode(), self.relpath, root=self.root, env=self._env())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        tmp.write_bytes(encrypted)
        try:
            back = sops.decrypt(tmp, root=self.root, display=self.relpath, env=self._env())
            if SecretsBundle.from_yaml(back.decode(), where=self.relpath).to_dict() != bundle.to_dict():
                raise InputError("the encrypted secrets do not read back identically", where=self.relpath)
        except InputError as exc:
            tmp.unlink(missing_ok=True)
            raise InputError(
                f"the new secrets file could not be decrypted again ({exc.message}); nothing was written",
                where=self.relpath,
                hint="the age key in SOPS_AGE_KEY_FILE must match a recipient of the .sops.yaml creation rule",
            ) from None
        os.replace(tmp, self.path)
        return bundle


def _only_placeholders(text: str) -> bool:
    """True when every leaf value of the secrets YAML is a ``${VAR}`` reference."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return False

    def leaves(node: Any) -> list[Any]:
        if isinstance(node, dict):
            return [x for v in node.values() for x in leaves(v)]
        if isinstance(node, list):
            return [x for v in node for x in leaves(v)]
        return [node]

    values = leaves(data) if isinstance(data, dict) else []
    return bool(values) and all(isinstance(v, str) and _PLACEHOLDER.match(v.strip()) for v in values)
