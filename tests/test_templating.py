"""Go templates as talhelper renders them: the text/template subset, sprig, Talos's Go fields."""

from __future__ import annotations

import pytest

from taltasks.machineconfig.templating import TemplateError, config_value, is_template, render

CONFIG = {
    "version": "v1alpha1",
    "machine": {
        "type": "controlplane",
        "install": {"image": "factory.talos.dev/metal-installer-secureboot/abc:v1.13.9", "disk": "/dev/sda"},
        "nodeLabels": {"zone": "a"},
        "certSANs": ["192.0.2.10", "cp.example.org"],
    },
    "cluster": {
        "clusterName": "home",
        "network": {"serviceSubnets": ["10.96.0.0/12"], "dnsDomain": "cluster.local"},
    },
}


def run(text: str, data=None, **kw) -> str:
    return render(text, config_value(CONFIG) if data is None else data, where="talos/patches/x.yaml", **kw)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # what talhelper's own tests and its users write
        (
            "{{ .MachineConfig.MachineInstall.InstallImage }}",
            "factory.talos.dev/metal-installer-secureboot/abc:v1.13.9",
        ),
        ('{{ .MachineConfig.MachineInstall.InstallImage | contains "installer-secureboot" }}', "true"),
        ("{{ .ConfigVersion }}", "v1alpha1"),
        ("{{ 123 }}|{{ true }}|{{ nil }}", "123|true|<nil>"),
        ("{{ .ClusterConfig.ClusterName }}", "home"),
        # zero values of unset fields, nil pointers printed
        (
            "[{{ .MachineConfig.MachineInstall.InstallWipe }}][{{ .MachineConfig.MachineKernel }}]",
            "[false][<nil>]",
        ),
        ("{{ .MachineConfig.MachineDisks }}{{ .MachineConfig.MachineSysctls }}", "[]map[]"),
        # control structures, variables, trim markers, comments
        ('{{- if eq .MachineConfig.MachineType "controlplane" }}cp{{ else }}worker{{ end -}}', "cp"),
        (
            '{{ if eq .MachineConfig.MachineType "worker" }}w{{ else if .MachineConfig.MachineCertSANs }}sans{{ end }}',
            "sans",
        ),
        (
            "{{ range $i, $s := .MachineConfig.MachineCertSANs }}{{ $i }}={{ $s }};{{ end }}",
            "0=192.0.2.10;1=cp.example.org;",
        ),
        ("{{ range .MachineConfig.MachineDisks }}x{{ else }}none{{ end }}", "none"),
        ("{{ with .MachineConfig.MachineInstall }}{{ .InstallDisk }}{{ end }}", "/dev/sda"),
        ("{{ with .MachineConfig.MachineKernel }}k{{ else }}no kernel{{ end }}", "no kernel"),
        ("{{ $n := .ClusterConfig.ClusterName }}{{ $n = upper $n }}{{ $n }}", "HOME"),
        ("a {{- /* note */ -}} b", "ab"),
        (
            '{{ index .MachineConfig.MachineNodeLabels "zone" }}/{{ .MachineConfig.MachineNodeLabels.zone }}',
            "a/a",
        ),
        ("{{ (index .ClusterConfig.ClusterNetwork.ServiceSubnet 0) }}", "10.96.0.0/12"),
        # sprig
        ('{{ .MachineConfig.MachineInstall.InstallImage | splitList ":" | last }}', "v1.13.9"),
        ('{{ default "x" .MachineConfig.MachineInstall.InstallExtraKernelArgs }}', "x"),
        ('{{ printf "%s-%03d" .ClusterConfig.ClusterName 7 }}', "home-007"),
        ('{{ list 1 2 3 | join "," }}', "1,2,3"),
        ('{{ $d := dict "a" 1 }}{{ hasKey $d "a" }} {{ get $d "a" }}', "true 1"),
        ('{{ "a.b.c" | replace "." "-" | quote }}', '"a-b-c"'),
        ('{{ regexReplaceAll "([0-9]+)" "v1.13.9" "<${1}>" }}', "v<1>.<13>.<9>"),
        ("{{ add 1 2 | mul 3 }} {{ sub 5 7 }} {{ div 7 2 }} {{ mod 7 3 }}", "9 -2 3 1"),
        (
            '{{ "hello" | b64enc | b64dec }} {{ trimPrefix "v" "v1.2" }} {{ ternary "y" "n" false }}',
            "hello 1.2 n",
        ),
        ('{{ "a\\nb" | indent 2 }}', "  a\n  b"),
        ('{{ env "ZONE" }}', "eu-1"),
    ],
)
def test_renders_like_go(text, expected):
    assert run(text, env={"ZONE": "eu-1"}) == expected


def test_is_template_is_talhelpers_test():
    assert is_template("{{ .X }}") and is_template("a }} b") and not is_template("plain ${VAR}")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "a: 1\nb: {{ .MachineConfig.Network.Hostname }}\n",
            12,
            "can't evaluate field Network in type *v1alpha1.MachineConfig",
        ),
        (
            "{{ .MachineConfig.MachineNetwork.NetworkHostname }}",
            11,
            "nil pointer evaluating *v1alpha1.NetworkConfig.NetworkHostname",
        ),
        ("\n\n{{ uuidv4 }}", 13, 'function "uuidv4" not defined'),
        ("{{ if .ConfigVersion }}\nunterminated", 11, "missing {{end}} for this {{if}}"),
        ('{{ template "x" }}', 11, "{{template}} is not supported"),
        ("{{ .ConfigVersion", 11, "unclosed action"),
        ("{{ upper 5 }}", 11, "expected string; got int"),
        ("{{ $x }}", 11, 'undefined variable "$x"'),
        ("{{ .ConfigVersion 1 }}", 11, "can't give argument to non-function"),
    ],
)
def test_errors_name_the_line_and_what_is_wrong(text, line, message):
    with pytest.raises(TemplateError) as info:
        run(text, line_offset=10)
    assert info.value.where == f"talos/patches/x.yaml:{line}"
    assert message in info.value.message


def test_field_errors_suggest_the_go_name():
    with pytest.raises(TemplateError) as info:
        run("{{ .MachineConfig.MachineInstal.InstallImage }}")
    assert "did you mean 'MachineInstall'" in (info.value.hint or "")


def test_plain_data_for_file_names():
    data = {"ClusterName": "home", "Hostname": "cp-1", "IPAddress": "192.0.2.11", "Role": "controlplane"}
    assert (
        render("{{ .Role }}/{{ .ClusterName }}-{{ .Hostname }}.yaml", data, where="t")
        == "controlplane/home-cp-1.yaml"
    )
