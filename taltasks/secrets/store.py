"""The cluster secrets bundle on disk: ``talos/talsecret.sops.yaml``.

The rules that protect a cluster from talhelper's worst footgun (secrets silently
regenerated when the file is missing or misnamed, locking the operator out):

* an existing file is always used — never replaced;
* a missing file is created only when the caller says so explicitly (``create=True``,
  which ``invoke configure`` sets after a confirmation or ``--yes``);
* a file that does not decrypt or does not parse is an error naming the file.

The bundle is encrypted through sops' stdin; the plaintext never touches the disk. After
writing, the file is decrypted again and compared, so a broken .sops.yaml cannot leave a
file nobody can open.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from taltasks.errors import InputError
from taltasks.machineconfig.contract import VersionContract
from taltasks.machineconfig.secrets import SecretsBundle
from taltasks.secrets import age, sops

SECRET_FILE = "talos/talsecret.sops.yaml"
PLAIN_NAMES = ("talos/talsecret.yaml", "talos/talsecret.yml")


@dataclass
class SecretStore:
    root: Path
    relpath: str = SECRET_FILE

    @property
    def path(self) -> Path:
        return self.root / self.relpath

    def exists(self) -> bool:
        return self.path.exists()

    def _env(self) -> dict[str, str]:
        return age.sops_environment(self.root)

    def load(self) -> SecretsBundle:
        if not self.exists():
            plain = next((p for p in PLAIN_NAMES if (self.root / p).exists()), None)
            if plain:
                raise InputError(
                    f"found an unencrypted {plain}; taltasks only reads the encrypted {self.relpath}",
                    where=plain,
                    hint=f"cd {self.root} && sops encrypt --filename-override {self.relpath} {plain} > {self.relpath}"
                    f" && rm {plain}",
                )
            raise InputError(
                "the cluster secrets file does not exist",
                where=self.relpath,
                hint="for a NEW cluster run `invoke configure --yes` to create it; for an existing cluster "
                "restore it from git — new secrets would lock you out of running nodes",
            )
        text = sops.decrypt(self.path, root=self.root, display=self.relpath, env=self._env())
        return SecretsBundle.from_yaml(text.decode(), where=self.relpath)

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
