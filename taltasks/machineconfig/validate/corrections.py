"""Where Talos's Go types differ from its published JSON schema — the one named table.

The type model of a contract is its official schema (shipped in
``taltasks/machineconfig/schemas/``) with the fields that later schemas stopped documenting
taken from the older schemas (Talos hides deprecated fields from the schema, ``docgen:nodoc``,
but keeps decoding them). What is left over is listed here, each entry checked against the
Go structs of ``pkg/machinery/config/types`` at the tags named in ``schemas/SOURCES.md``:

* :data:`EXTRA_FIELDS` — fields the Go structs decode that no published schema documents;
* :data:`REMOVED_FIELDS` — fields an older schema documents that the Go struct no longer has
  from the contract given on;
* :data:`ENUM_EXTRA` — values Talos parses beyond an enum the schema states;
* :data:`CUSTOM_TYPES` — definitions whose Go type has its own ``UnmarshalYAML``, with the
  YAML shape that unmarshaller accepts;
* :data:`QUIET_DEPRECATIONS` — deprecated fields Talos's own generator still writes;
* :data:`EXTRA_REPLACEMENTS` — a replacement a deprecation warning names in addition to the
  Go marker's own.

* :data:`KIND_NAMES` — the kind Talos registers where the schema's ``kind`` enum differs
  (the 1.14 rc schema names UnattendedInstallConfig ``UnattendedInstall``);
* :data:`EXTRA_KINDS` — kinds Talos registers that no schema describes.

Fields the *generator* writes that a schema lacks need no entry of their own: they are in
:data:`EXTRA_FIELDS` (``persist``) or come from the older schemas (``features.rbac``…).
"""

from __future__ import annotations

from typing import Any

Version = tuple[int, int]

# (definition, field) -> JSON-schema fragment of the Go field's YAML shape
EXTRA_FIELDS: dict[tuple[str, str], dict[str, Any]] = {
    ("v1alpha1.Config", "persist"): {"type": "boolean"},  # *bool, "not supported anymore"
    ("v1alpha1.ClusterConfig", "allowSchedulingOnMasters"): {"type": "boolean"},  # *bool, pre-1.2 name
    ("v1alpha1.Device", "cidr"): {"type": "string"},  # DeviceCIDR string (use addresses)
    ("v1alpha1.Vlan", "cidr"): {"type": "string"},  # VlanCIDR string (use addresses)
    ("v1alpha1.EtcdConfig", "subnet"): {"type": "string"},  # EtcdSubnet string (use advertisedSubnets)
    ("v1alpha1.InstallConfig", "bootloader"): {"type": "boolean"},  # InstallBootloader bool, "never worked"
}

# (definition, field) -> first contract whose Go struct no longer has it
REMOVED_FIELDS: dict[tuple[str, str], Version] = {
    ("block.MountSpec", "readOnly"): (1, 13),
}

# (definition, field) -> values Talos accepts beyond the schema's enum
ENUM_EXTRA: dict[tuple[str, str], tuple[str, ...]] = {
    # machine.ParseType: "init" (deprecated), "join" and "" (read as worker, with a warning)
    ("v1alpha1.MachineConfig", "type"): ("init", "join"),
}

# definition -> the YAML shape its UnmarshalYAML accepts
CUSTOM_TYPES: dict[str, dict[str, Any]] = {
    # v1alpha1.Endpoint unmarshals a URL string (logging destinations: tcp://host:port);
    # the schema publishes it as an object without properties
    "v1alpha1.Endpoint": {"type": "string"},
}

# definition -> the kind Talos registers it under, where the schema's kind enum differs
KIND_NAMES: dict[str, str] = {
    "network.KubespanEndpointsConfigV1Alpha1": "KubeSpanEndpointsConfig",  # schema: KubeSpanEndpoints
    "runtime.UnattendedInstallConfigV1Alpha1": "UnattendedInstallConfig",  # 1.14 rc schema: UnattendedInstall
}

# kind -> (first contract, JSON-schema fragment) for kinds Talos registers that no schema
# describes (their contents are accepted as they are)
EXTRA_KINDS: dict[str, tuple[Version, dict[str, Any]]] = {
    "ImageVerificationConfig": ((1, 13), {"type": "object"}),
}

# deprecated fields that never warn: Talos's own generator still writes them on every contract
QUIET_DEPRECATIONS: frozenset[tuple[str, str]] = frozenset({("v1alpha1.Config", "persist")})

# (definition, field) -> names a deprecation warning adds to the Go marker's replacements
EXTRA_REPLACEMENTS: dict[tuple[str, str], tuple[str, ...]] = {
    # the 1.14 marker names KubeNodeConfig; users coming from 1.1 know the v1alpha1 field
    ("v1alpha1.ClusterConfig", "allowSchedulingOnMasters"): ("allowSchedulingOnControlPlanes",),
}
