from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NodenameSpec(_message.Message):
    __slots__ = ("nodename", "hostname_version", "skip_node_registration")
    NODENAME_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_VERSION_FIELD_NUMBER: _ClassVar[int]
    SKIP_NODE_REGISTRATION_FIELD_NUMBER: _ClassVar[int]
    nodename: str
    hostname_version: str
    skip_node_registration: bool
    def __init__(self, nodename: _Optional[str] = ..., hostname_version: _Optional[str] = ..., skip_node_registration: _Optional[bool] = ...) -> None: ...

class StaticPodStatusSpec(_message.Message):
    __slots__ = ("pod_status",)
    POD_STATUS_FIELD_NUMBER: _ClassVar[int]
    pod_status: _struct_pb2.Struct
    def __init__(self, pod_status: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class StaticPodSpec(_message.Message):
    __slots__ = ("pod",)
    POD_FIELD_NUMBER: _ClassVar[int]
    pod: _struct_pb2.Struct
    def __init__(self, pod: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ArgValues(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, values: _Optional[_Iterable[str]] = ...) -> None: ...

class APIServerConfigSpec(_message.Message):
    __slots__ = ("image", "cloud_provider", "control_plane_endpoint", "etcd_servers", "local_port", "service_cid_rs", "legacy_extra_args", "environment_variables", "advertised_address", "extra_args", "startup_probes_enabled", "use_authentication_config", "args")
    class LegacyExtraArgsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class EnvironmentVariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ExtraArgsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ArgValues
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ArgValues, _Mapping]] = ...) -> None: ...
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CLOUD_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    CONTROL_PLANE_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    ETCD_SERVERS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_PORT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_CID_RS_FIELD_NUMBER: _ClassVar[int]
    LEGACY_EXTRA_ARGS_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_VARIABLES_FIELD_NUMBER: _ClassVar[int]
    ADVERTISED_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_ARGS_FIELD_NUMBER: _ClassVar[int]
    STARTUP_PROBES_ENABLED_FIELD_NUMBER: _ClassVar[int]
    USE_AUTHENTICATION_CONFIG_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    image: str
    cloud_provider: str
    control_plane_endpoint: str
    etcd_servers: _containers.RepeatedScalarFieldContainer[str]
    local_port: int
    service_cid_rs: _containers.RepeatedScalarFieldContainer[str]
    legacy_extra_args: _containers.ScalarMap[str, str]
    environment_variables: _containers.ScalarMap[str, str]
    advertised_address: str
    extra_args: _containers.MessageMap[str, ArgValues]
    startup_probes_enabled: bool
    use_authentication_config: bool
    args: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, image: _Optional[str] = ..., cloud_provider: _Optional[str] = ..., control_plane_endpoint: _Optional[str] = ..., etcd_servers: _Optional[_Iterable[str]] = ..., local_port: _Optional[int] = ..., service_cid_rs: _Optional[_Iterable[str]] = ..., legacy_extra_args: _Optional[_Mapping[str, str]] = ..., environment_variables: _Optional[_Mapping[str, str]] = ..., advertised_address: _Optional[str] = ..., extra_args: _Optional[_Mapping[str, ArgValues]] = ..., startup_probes_enabled: _Optional[bool] = ..., use_authentication_config: _Optional[bool] = ..., args: _Optional[_Iterable[str]] = ...) -> None: ...

class ControllerManagerConfigSpec(_message.Message):
    __slots__ = ("enabled", "image", "cloud_provider", "pod_cid_rs", "service_cid_rs", "legacy_extra_args", "environment_variables", "extra_args", "args")
    class LegacyExtraArgsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class EnvironmentVariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ExtraArgsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ArgValues
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ArgValues, _Mapping]] = ...) -> None: ...
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CLOUD_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    POD_CID_RS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_CID_RS_FIELD_NUMBER: _ClassVar[int]
    LEGACY_EXTRA_ARGS_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_VARIABLES_FIELD_NUMBER: _ClassVar[int]
    EXTRA_ARGS_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    image: str
    cloud_provider: str
    pod_cid_rs: _containers.RepeatedScalarFieldContainer[str]
    service_cid_rs: _containers.RepeatedScalarFieldContainer[str]
    legacy_extra_args: _containers.ScalarMap[str, str]
    environment_variables: _containers.ScalarMap[str, str]
    extra_args: _containers.MessageMap[str, ArgValues]
    args: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, enabled: _Optional[bool] = ..., image: _Optional[str] = ..., cloud_provider: _Optional[str] = ..., pod_cid_rs: _Optional[_Iterable[str]] = ..., service_cid_rs: _Optional[_Iterable[str]] = ..., legacy_extra_args: _Optional[_Mapping[str, str]] = ..., environment_variables: _Optional[_Mapping[str, str]] = ..., extra_args: _Optional[_Mapping[str, ArgValues]] = ..., args: _Optional[_Iterable[str]] = ...) -> None: ...

class SchedulerConfigSpec(_message.Message):
    __slots__ = ("enabled", "image", "legacy_extra_args", "environment_variables", "config", "extra_args", "args")
    class LegacyExtraArgsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class EnvironmentVariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ExtraArgsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ArgValues
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ArgValues, _Mapping]] = ...) -> None: ...
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    LEGACY_EXTRA_ARGS_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_VARIABLES_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    EXTRA_ARGS_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    image: str
    legacy_extra_args: _containers.ScalarMap[str, str]
    environment_variables: _containers.ScalarMap[str, str]
    config: _struct_pb2.Struct
    extra_args: _containers.MessageMap[str, ArgValues]
    args: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, enabled: _Optional[bool] = ..., image: _Optional[str] = ..., legacy_extra_args: _Optional[_Mapping[str, str]] = ..., environment_variables: _Optional[_Mapping[str, str]] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., extra_args: _Optional[_Mapping[str, ArgValues]] = ..., args: _Optional[_Iterable[str]] = ...) -> None: ...

class KubeletSpecSpec(_message.Message):
    __slots__ = ("image", "args", "expected_nodename", "config", "credential_provider_config")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_NODENAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_PROVIDER_CONFIG_FIELD_NUMBER: _ClassVar[int]
    image: str
    args: _containers.RepeatedScalarFieldContainer[str]
    expected_nodename: str
    config: _struct_pb2.Struct
    credential_provider_config: _struct_pb2.Struct
    def __init__(self, image: _Optional[str] = ..., args: _Optional[_Iterable[str]] = ..., expected_nodename: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., credential_provider_config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
