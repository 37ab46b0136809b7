"""Image Factory schematic IDs computed offline match the factory's (talos-config-gen.md §5)."""

from __future__ import annotations

import pytest

from taltasks.model.schematic import (
    VANILLA_ID,
    canonical_yaml,
    installer_image,
    schematic_id,
    schematic_problems,
)


def kargs(*args):
    return {"customization": {"extraKernelArgs": list(args)}}


def exts(*names):
    return {"customization": {"systemExtensions": {"officialExtensions": list(names)}}}


VECTORS = [
    ({}, "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"),
    ({"customization": {}}, "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"),
    (kargs("noapic", "nolapic"), "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c"),
    (
        {"customization": {"meta": [{"key": 10, "value": "foo"}]}},
        "d308a2a5ee2277bed5fbaa104fcbc8d59122abfa737df987a95b4ca763459a7f",
    ),
    (
        {"customization": {"secureboot": {"includeWellKnownCertificates": True}}},
        "fa8e05f142a851d3ee568eb0a8e5841eaf6b0ebc8df9a63df16ac5ed2c04f3e6",
    ),
    (
        {"customization": {"diskImage": {"sectorSize": 4096}}},
        "92833e9ddd9bb9e11b2464fa5525429f01866306d52ebd882ee08d7918f6d1ea",
    ),
    (
        {"overlay": {"name": "rpi_generic", "image": "siderolabs/sbc-raspberrypi"}},
        "ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9",
    ),
    (
        exts("siderolabs/drbd", "siderolabs/zfs"),
        "98442b5bb4e8d050f30978ce3e6ec22e7bf534d57cafcd51313235128057e612",
    ),
    (kargs("hihi", "hehe"), "ff5083b14ccb03821ea738d712ac08a82b44d2693013622059edaae286665239"),
    (
        {
            "customization": {
                "extraKernelArgs": ["net.ifnames=0"],
                **exts("siderolabs/tailscale")["customization"],
            }
        },
        "104c23dfe7c5bfeff6a4cc7e166d8b3bba0f371760592c7677c90c822bb1d109",
    ),
    (
        {
            "customization": {
                "extraKernelArgs": ["net.ifnames=0"],
                **exts("siderolabs/intel-ucode")["customization"],
            }
        },
        "9e8cc193609699825d61c039c7738d81cf29c7b20f2a91d8f5c540511b9ea0b4",
    ),
    (
        {
            "customization": {
                "extraKernelArgs": [
                    "siderolink.api=grpc://192.168.178.20:8090?jointoken=testonly",
                    "talos.events.sink=[fdae:41e4:649b:9303::1]:8091",
                    "talos.logging.kernel=tcp://[fdae:41e4:649b:9303::1]:8092",
                    "maintenance=true",
                ],
                "meta": [{"key": 42, "value": "test-1"}, {"key": 41, "value": "test-2"}],
                "systemExtensions": {"officialExtensions": ["siderolabs/hello-world-service"]},
            }
        },
        "586e83c6cc2e1d523a28d448ba99936ee1d6cd3c5076ded50d2c26bda0745b1e",
    ),
]


@pytest.mark.parametrize(("schematic", "expected"), VECTORS)
def test_schematic_id_vectors(schematic, expected):
    assert schematic_id(schematic) == expected


def test_canonical_text_is_go_yaml_shaped():
    text = canonical_yaml(
        {
            "customization": {
                "extraKernelArgs": ["net.ifnames=0"],
                **exts("siderolabs/tailscale")["customization"],
            }
        }
    )
    assert text == (
        "customization:\n"
        "    extraKernelArgs:\n"
        "        - net.ifnames=0\n"
        "    systemExtensions:\n"
        "        officialExtensions:\n"
        "            - siderolabs/tailscale\n"
    )


def test_extension_order_is_significant():
    assert schematic_id(exts("siderolabs/drbd", "siderolabs/zfs")) != schematic_id(
        exts("siderolabs/zfs", "siderolabs/drbd")
    )


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("true", '"true"'),
        ("123", '"123"'),
        ("", '""'),
        ("[x]", "'[x]'"),
        ("a: b", "'a: b'"),
        ("plain", "plain"),
    ],
)
def test_scalars_needing_quotes_are_quoted_like_go_yaml(value, quoted):
    assert f"        - {quoted}\n" in canonical_yaml(kargs(value))


def test_installer_image_forms():
    s = exts("siderolabs/iscsi-tools")
    sid = schematic_id(s)
    assert installer_image("v1.11.5") == "ghcr.io/siderolabs/installer:v1.11.5"
    assert installer_image("v1.11.5", schematic=s) == f"factory.talos.dev/metal-installer/{sid}:v1.11.5"
    assert installer_image("v1.12.0", schematic=s, secureboot=True, platform="aws") == (
        f"factory.talos.dev/aws-installer-secureboot/{sid}:v1.12.0"
    )
    assert (
        installer_image("v1.11.5", secureboot=True)
        == f"factory.talos.dev/metal-installer-secureboot/{VANILLA_ID}:v1.11.5"
    )
    assert installer_image("v1.11.5", schematic=s, image_url="registry.lan/talos/installer") == (
        "registry.lan/talos/installer:v1.11.5"
    )
    assert (
        installer_image("v1.11.5", schematic=s, registry="factory.lan")
        == f"factory.lan/metal-installer/{sid}:v1.11.5"
    )


@pytest.mark.parametrize("version", ["v1.14.0", "v1.14.7", "v1.15.0-alpha.1", "v2.0.0"])
def test_installer_from_1_14_is_always_a_factory_image(version):
    """ghcr.io/siderolabs/installer is not published from Talos 1.14: a node without a
    schematic gets the Factory installer of the empty schematic, never the stock image."""
    s = exts("siderolabs/iscsi-tools")
    assert installer_image(version) == f"factory.talos.dev/metal-installer/{VANILLA_ID}:{version}"
    assert installer_image(version, platform="aws", registry="factory.example") == (
        f"factory.example/aws-installer/{VANILLA_ID}:{version}"
    )
    assert installer_image(version, schematic=s) == (
        f"factory.talos.dev/metal-installer/{schematic_id(s)}:{version}"
    )
    for image in (installer_image(version), installer_image(version, secureboot=True)):
        assert "ghcr.io/siderolabs/installer" not in image


def test_stock_installer_url_refused_from_1_14():
    from taltasks.model.schematic import stock_installer_problem

    assert stock_installer_problem("ghcr.io/siderolabs/installer", "v1.13.9") is None
    assert stock_installer_problem("registry.lan/talos/installer", "v1.14.7") is None
    problem = stock_installer_problem("ghcr.io/siderolabs/installer", "v1.14.7")
    assert problem and "not published for Talos v1.14.7" in problem


@pytest.mark.parametrize(
    ("schematic", "fragment"),
    [
        (exts("siderolabs/zfs", "siderolabs/zfs"), "listed twice"),
        ({"customization": {"extraKernelArg": ["x"]}}, "did you mean 'extraKernelArgs'"),
        ({"customization": {"meta": [{"key": 300, "value": "x"}]}}, "0..255"),
        ({"customization": {"bootloader": "lilo"}}, "bootloader must be one of"),
        ({"customization": {"extraKernelArgs": "x"}}, "must be a list"),
    ],
)
def test_schematic_problems(schematic, fragment):
    problems = schematic_problems(schematic)
    assert any(fragment in message for _, message in problems), problems


def test_valid_schematic_has_no_problems():
    assert schematic_problems(VECTORS[-1][0]) == []
