"""`ingressd.config.load_config`: Kubernetes YAML → `Config`, errors as FILE:LINE (SPEC §2)."""

from __future__ import annotations

import base64
import logging
import textwrap
from pathlib import Path

import pytest

from ingressd.config import load_config
from ingressd.errors import ConfigError
from ingressd.model import (
    EndpointAddress,
    EndpointPort,
    IngressPath,
    ObjectRef,
    PathType,
    ServiceBackend,
    ServicePort,
)
from ingressd.yamlfile import read_documents
from tests import kube
from tests.kube import LoadYaml, ProblemsOf, WriteYaml, line_of

DATA = Path(__file__).resolve().parents[1] / "data"
CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n"

WEB = kube.ingress("web", kube.rule("shop.example.com", kube.path("/", "web")))


def yaml_text(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def problem_at(problems: list[str], path: str, line: int, *fragments: str) -> str:
    """The one problem reported at path:line holding every fragment (else fail, showing all)."""
    prefix = f"{path}:{line}: "
    found = [p for p in problems if p.startswith(prefix) and all(f in p for f in fragments)]
    assert len(found) == 1, f"want {prefix}…{fragments} in:\n" + "\n".join(problems)
    return found[0]


# --- reading files -------------------------------------------------------------


def test_multi_document_file_loads_every_kind(load_yaml: LoadYaml) -> None:
    config = load_yaml(
        kube.ingress_class("nginx"),
        WEB,
        kube.service("web", kube.service_port(80)),
        kube.endpoints("web", ["10.0.0.1"], kube.endpoint_port(8080)),
        kube.endpoint_slice("web-abc", "web", [kube.slice_endpoint("10.0.0.2")]),
        kube.tls_secret("web-tls", CERT, KEY),
    )
    assert [i.ref for i in config.ingresses] == [ObjectRef("default", "web")]
    assert [c.name for c in config.ingress_classes] == ["nginx"]
    assert [s.ref.name for s in config.services] == ["web"]
    assert [g.service.name for g in config.endpoints] == ["web", "web"]
    assert [s.ref.name for s in config.secrets] == ["web-tls"]


def test_kind_list_items_are_read_as_objects(tmp_path: Path) -> None:
    config = load_config([str(DATA / "cluster-list.yaml")], certs_dir=str(tmp_path))
    assert [i.ref for i in config.ingresses] == [ObjectRef("web", "docs")]
    assert [s.ref for s in config.services] == [ObjectRef("web", "docs")]
    assert config.ingresses[0].created is not None
    assert config.ingresses[0].class_name == "nginx"
    items_line = line_of((DATA / "cluster-list.yaml").read_text(), "kind: Ingress")
    assert config.ingresses[0].origin.line == items_line - 1  # the item's `- apiVersion` line


def test_directory_loads_its_yaml_files_in_name_order_and_ignores_others(
    write_yaml: WriteYaml, tmp_path: Path
) -> None:
    write_yaml(kube.service("b", kube.service_port(80)), name="conf/b.yaml")
    write_yaml(kube.service("a", kube.service_port(80)), name="conf/a.yml")
    write_yaml("not: [yaml", name="conf/notes.txt")
    config = load_config([str(tmp_path / "conf")])
    assert [s.ref.name for s in config.services] == ["a", "b"]
    assert config.files == (str(tmp_path / "conf" / "a.yml"), str(tmp_path / "conf" / "b.yaml"))


def test_several_config_paths_are_merged_into_one_config(write_yaml: WriteYaml) -> None:
    first = write_yaml(WEB, name="ingress.yaml")
    second = write_yaml(kube.service("web", kube.service_port(80)), name="services.yaml")
    config = load_config([first, second])
    assert [i.ref.name for i in config.ingresses] == ["web"]
    assert [s.ref.name for s in config.services] == ["web"]
    assert config.files == (first, second)


def test_digest_changes_when_a_file_changes(write_yaml: WriteYaml) -> None:
    path = write_yaml(WEB)
    before = load_config([path]).digest
    write_yaml(kube.ingress("web", kube.rule("other.example.com", kube.path("/", "web"))))
    assert load_config([path]).digest != before


def test_mixed_application_manifest_skips_other_kinds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="ingressd.config"):
        config = load_config([str(DATA / "shop-app.yaml")], certs_dir=str(tmp_path))
    skipped = {r.getMessage().rsplit(" ", 1)[-1] for r in caplog.records}
    assert skipped == {"Namespace", "ConfigMap", "Deployment"}
    assert [i.ref for i in config.ingresses] == [ObjectRef("shop", "shop")]
    assert sorted(s.ref.name for s in config.services) == ["checkout", "payments", "storefront"]
    assert [s.ref for s in config.secrets] == [ObjectRef("shop", "shop-tls")]
    assert config.secrets[0].certificate.startswith(b"-----BEGIN CERTIFICATE-----\nMIIB")
    assert config.warnings == ()


def test_objects_without_namespace_are_in_default(load_yaml: LoadYaml) -> None:
    config = load_yaml(WEB, kube.service("api", kube.service_port(80), namespace="shop"))
    assert config.ingresses[0].ref == ObjectRef("default", "web")
    assert config.services[0].ref == ObjectRef("shop", "api")


def test_yaml_timestamps_stay_kubernetes_timestamps(load_yaml: LoadYaml) -> None:
    text = yaml_text(
        """
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: web
          creationTimestamp: 2024-03-05T09:12:44Z
        spec:
          defaultBackend: {service: {name: web, port: {number: 80}}}
        """
    )
    created = load_yaml(text).ingresses[0].created
    assert created is not None and created.isoformat() == "2024-03-05T09:12:44+00:00"


def test_yaml_merge_key_may_override_merged_keys(load_yaml: LoadYaml) -> None:
    # A valid manifest for kubectl: `<<` merges, then the mapping's own keys override.
    text = yaml_text(
        """
        apiVersion: v1
        kind: Service
        metadata: {name: web}
        spec:
          ports:
            - &http {name: http, port: 80, targetPort: 8080}
            - <<: *http
              name: admin
              port: 81
        """
    )
    ports = load_yaml(text).services[0].ports
    assert ports == (ServicePort(80, "http", 8080), ServicePort(81, "admin", 8080))


def test_yaml_aliases_are_shared_values_and_special_scalars_keep_their_types(
    load_yaml: LoadYaml,
) -> None:
    text = yaml_text(
        """
        apiVersion: v1
        kind: Service
        metadata: {name: web, labels: &labels {app: web, =: equals}}
        spec:
          selector: *labels
          ports: [{name: http, port: 80, targetPort: 8080}]
        """
    )
    service = load_yaml(text).services[0]
    assert service.ports == (ServicePort(80, "http", 8080),)  # ints stay ints


def test_yaml_aliases_are_built_once_so_nested_ones_cannot_blow_up(
    write_yaml: WriteYaml,
) -> None:
    # Each level holds ten aliases of the one before: copying them would grow tenfold
    # per level (kept at four levels so that a regression fails fast, not hangs).
    levels = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 4)]
    [document], _ = read_documents([write_yaml("\n".join(levels) + "\n")])
    top = document.value["l3"]
    assert len(top) == 10 and all(item is top[0] for item in top)  # one shared object


@pytest.mark.parametrize(
    ("document", "line", "message"),
    [
        ("a: &x [1, *x]\n", 1, "recursive"),
        ("a: 1\nb: !custom {x: 1}\n", 2, "constructor for the tag"),
        ("a: 1\nb: {x: 1, x: 2}\n", 2, "duplicate key"),
    ],
    ids=["recursive-alias", "unknown-tag", "duplicate-key"],
)
def test_yaml_that_cannot_be_built_names_its_line(
    write_yaml: WriteYaml, document: str, line: int, message: str
) -> None:
    path = write_yaml(document)
    with pytest.raises(ConfigError) as caught:
        load_config([path])
    [problem] = caught.value.problems
    assert problem.startswith(f"{path}:{line}: invalid YAML:"), problem
    assert message in problem, problem


# --- each kind -------------------------------------------------------------------


def test_ingress_fields_are_read(load_yaml: LoadYaml) -> None:
    config = load_yaml(
        kube.ingress(
            "shop",
            kube.rule(
                "shop.example.com",
                kube.path("/api", "api", 8080, "Exact"),
                kube.path("/", "web", "http"),
            ),
            kube.rule(None, kube.path("/", "web", 80, "ImplementationSpecific")),
            namespace="shop",
            default=("fallback", 80),
            class_name="nginx",
            annotations={"nginx.ingress.kubernetes.io/proxy-body-size": "8m"},
            tls=[{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
            created="2024-01-02T03:04:05Z",
        )
    )
    ingress = config.ingresses[0]
    assert ingress.class_name == "nginx"
    assert ingress.annotation("nginx.ingress.kubernetes.io/proxy-body-size") == "8m"
    assert ingress.default_backend == ServiceBackend("fallback", 80)
    assert [r.host for r in ingress.rules] == ["shop.example.com", None]
    api, web = ingress.rules[0].paths
    assert (api.path, api.path_type, api.backend) == (
        "/api",
        PathType.EXACT,
        ServiceBackend("api", 8080),
    )
    assert (web.path_type, web.backend) == (PathType.PREFIX, ServiceBackend("web", None, "http"))
    assert ingress.rules[1].paths[0].path_type is PathType.IMPLEMENTATION_SPECIFIC
    assert [(t.hosts, t.secret_name) for t in ingress.tls] == [(("shop.example.com",), "shop-tls")]


def test_ingress_path_remembers_its_file_and_line(load_yaml: LoadYaml) -> None:
    text = kube.dump(WEB)
    path: IngressPath = load_yaml(text).ingresses[0].rules[0].paths[0]
    assert path.origin.line == line_of(text, "- path: /")
    assert path.origin.path.endswith("config.yaml")


def test_legacy_class_annotation_gives_the_class(load_yaml: LoadYaml) -> None:
    annotations = {"kubernetes.io/ingress.class": "internal"}
    config = load_yaml(kube.ingress("web", default=("web", 80), annotations=annotations))
    assert config.ingresses[0].class_name == "internal"


def test_ingress_class_default_annotation_is_read(load_yaml: LoadYaml) -> None:
    config = load_yaml(kube.ingress_class("nginx", default=True), kube.ingress_class("other"))
    assert [(c.name, c.is_default) for c in config.ingress_classes] == [
        ("nginx", True),
        ("other", False),
    ]
    assert config.ingress_classes[0].controller == "k8s.io/ingress-nginx"


def test_service_ports_with_numeric_and_named_target_ports(load_yaml: LoadYaml) -> None:
    service = kube.service(
        "web", kube.service_port(80, "http", "web"), kube.service_port(9090, "metrics", 9091)
    )
    ports = load_yaml(service).services[0].ports
    assert ports == (ServicePort(80, "http", "web"), ServicePort(9090, "metrics", 9091))


def test_externalname_service_keeps_its_external_name(load_yaml: LoadYaml) -> None:
    service = kube.service("psp", kube.service_port(443), external_name="pay.example.net")
    assert load_yaml(service).services[0].external_name == "pay.example.net"


def test_endpoints_read_ready_and_not_ready_addresses(load_yaml: LoadYaml) -> None:
    endpoints = kube.endpoints(
        "web", ["10.0.0.1"], kube.endpoint_port(8080, "http"), not_ready=["10.0.0.2"]
    )
    (group,) = load_yaml(endpoints).endpoints
    assert group.service == ObjectRef("default", "web")
    assert group.addresses == (
        EndpointAddress("10.0.0.1", ready=True, serving=True),
        EndpointAddress("10.0.0.2", ready=False, serving=False),
    )
    assert group.ports == (EndpointPort(8080, "http"),)


@pytest.mark.parametrize(
    ("conditions", "ready", "serving"),
    [
        ({}, True, True),  # no conditions: nil ready means ready
        ({"ready": True}, True, True),
        ({"ready": False}, False, False),
        ({"ready": False, "serving": True, "terminating": True}, False, True),
        ({"ready": False, "terminating": True}, False, True),  # nil serving means serving
        ({"ready": False, "serving": False, "terminating": True}, False, False),
        ({"ready": False, "serving": True, "terminating": False}, False, False),
    ],
    ids=repr,
)
def test_endpoint_slice_conditions_as_kube_proxy_reads_them(
    load_yaml: LoadYaml, conditions: dict[str, bool], ready: bool, serving: bool
) -> None:
    """`serving` in the model: usable when no endpoint is ready (serving *and* terminating)."""
    item = kube.slice_endpoint("10.0.0.7", **conditions)
    endpoint_slice = kube.endpoint_slice("web-x", "web", [item], kube.endpoint_port(8080, "http"))
    (group,) = load_yaml(endpoint_slice).endpoints
    assert group.service == ObjectRef("default", "web")
    assert group.addresses == (EndpointAddress("10.0.0.7", ready=ready, serving=serving),)
    assert group.ports == (EndpointPort(8080, "http"),)


def test_endpoint_slice_without_service_label_is_ignored_with_a_warning(
    load_yaml: LoadYaml,
) -> None:
    endpoint_slice = kube.endpoint_slice("orphan", "web", [kube.slice_endpoint("10.0.0.1")])
    del endpoint_slice["metadata"]["labels"]
    config = load_yaml(endpoint_slice)
    assert config.endpoints == ()
    assert "EndpointSlice default/orphan: no kubernetes.io/service-name label" in config.warnings[0]


def test_tls_secret_with_base64_data(load_yaml: LoadYaml) -> None:
    (secret,) = load_yaml(kube.tls_secret("web-tls", CERT, KEY, namespace="shop")).secrets
    assert secret.ref == ObjectRef("shop", "web-tls")
    assert (secret.certificate, secret.key) == (CERT.encode(), KEY.encode())


def test_tls_secret_with_string_data(load_yaml: LoadYaml) -> None:
    (secret,) = load_yaml(kube.tls_secret("web-tls", CERT, KEY, string_data=True)).secrets
    assert (secret.certificate, secret.key) == (CERT.encode(), KEY.encode())


def test_tls_secret_base64_wrapped_over_several_lines_is_valid(load_yaml: LoadYaml) -> None:
    # `base64 tls.crt` wraps at 76 columns; the API server's decoder ignores the line breaks.
    encoded = base64.b64encode(CERT.encode() * 3).decode()
    wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    secret = kube.tls_secret("web-tls", CERT, KEY)
    secret["data"]["tls.crt"] = wrapped + "\n"
    (loaded,) = load_yaml(secret).secrets
    assert loaded.certificate == CERT.encode() * 3


def test_secrets_of_other_types_are_ignored(load_yaml: LoadYaml) -> None:
    opaque = kube.tls_secret("db-password", CERT, KEY) | {"type": "Opaque"}
    assert load_yaml(opaque).secrets == ()


# --- certificates directory ------------------------------------------------------------

TLS_WEB = kube.ingress(
    "web",
    kube.rule("shop.example.com", kube.path("/", "web")),
    tls=[{"hosts": ["shop.example.com"], "secretName": "web-tls"}],
)


def test_secret_without_object_is_read_from_certs_dir(load_yaml: LoadYaml, tmp_path: Path) -> None:
    certs = tmp_path / "pem"
    certs.mkdir()
    (certs / "web-tls.crt").write_text(CERT)
    (certs / "web-tls.key").write_text(KEY)
    config = load_yaml(TLS_WEB, certs_dir=str(certs))
    (secret,) = config.secrets
    assert secret.ref == ObjectRef("default", "web-tls")
    assert (secret.certificate, secret.key) == (CERT.encode(), KEY.encode())
    assert secret.origin.path == str(certs / "web-tls.crt")
    assert config.warnings == ()


def test_certs_dir_defaults_to_certs_beside_the_first_config(
    write_yaml: WriteYaml, tmp_path: Path
) -> None:
    path = write_yaml(TLS_WEB, name="site/ingress.yaml")
    (tmp_path / "site" / "certs").mkdir()
    (tmp_path / "site" / "certs" / "web-tls.crt").write_text(CERT)
    (tmp_path / "site" / "certs" / "web-tls.key").write_text(KEY)
    assert [s.ref.name for s in load_config([path]).secrets] == ["web-tls"]


def test_secret_object_wins_over_certs_dir(load_yaml: LoadYaml, tmp_path: Path) -> None:
    (tmp_path / "web-tls.crt").write_text("other")
    (tmp_path / "web-tls.key").write_text("other")
    config = load_yaml(TLS_WEB, kube.tls_secret("web-tls", CERT, KEY), certs_dir=str(tmp_path))
    assert [s.certificate for s in config.secrets] == [CERT.encode()]


def test_missing_secret_is_a_warning_naming_file_line_and_ingress(
    write_yaml: WriteYaml, tmp_path: Path
) -> None:
    text = kube.dump(TLS_WEB)
    path = write_yaml(text)
    config = load_config([path], certs_dir=str(tmp_path / "none"))
    (warning,) = config.warnings
    assert warning.startswith(f"{path}:{line_of(text, '- hosts:')}: Ingress default/web: ")
    assert "TLS secret default/web-tls not found" in warning


# --- errors: FILE:LINE and the object's name, as the API server would refuse ---------------

INGRESS = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
spec:
  rules:
    - host: shop.example.com
      http:
        paths:
          - path: {path}
            pathType: {path_type}
            backend:
              service:
                name: web
                port: {{{port}}}
"""


def ingress_with_path(path: str, path_type: str, port: str = "number: 80") -> str:
    """Ingress shop/web with one path, as YAML text (values inserted verbatim)."""
    return INGRESS.format(path=path, path_type=path_type, port=port)


def without_line(text: str, needle: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if needle not in line)


def test_yaml_syntax_error_names_file_and_line(problems_of: ProblemsOf) -> None:
    text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web: oops\n"
    path, problems = problems_of(text)
    problem_at(problems, path, 4, "invalid YAML", "mapping values are not allowed")


def test_yaml_syntax_errors_of_every_file_are_reported(write_yaml: WriteYaml) -> None:
    first = write_yaml("kind: [Service\n", name="a.yaml")
    second = write_yaml("apiVersion: v1\n\tkind: Service\n", name="b.yaml")
    with pytest.raises(ConfigError) as caught:
        load_config([first, second])
    assert [p.split(":", 1)[0] for p in caught.value.problems] == [first, second]


def test_duplicate_yaml_key_names_file_and_line(problems_of: ProblemsOf) -> None:
    text = yaml_text(
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: web
          namespace: shop
          name: web2
        """
    )
    path, problems = problems_of(text)
    problem_at(problems, path, line_of(text, "name: web2"), "duplicate key 'name'")


def test_non_scalar_mapping_key_is_a_yaml_error_not_a_crash(problems_of: ProblemsOf) -> None:
    text = "apiVersion: v1\nkind: Service\nmetadata:\n  [name]: web\n"
    path, problems = problems_of(text)
    problem_at(problems, path, 4, "invalid YAML", "mapping key must be a scalar")


def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError) as caught:
        load_config([missing])
    assert caught.value.problems == [f"{missing}:0: cannot read: No such file or directory"]


def test_missing_path_type_names_the_path_line(problems_of: ProblemsOf) -> None:
    text = without_line(ingress_with_path("/api", "Exact"), "pathType:")
    path, problems = problems_of(text)
    problem_at(
        problems, path, line_of(text, "path: /api"), "Ingress shop/web", "pathType: Required value"
    )


def test_unknown_path_type_names_its_line(problems_of: ProblemsOf) -> None:
    text = ingress_with_path("/api", "Regex")
    path, problems = problems_of(text)
    problem_at(
        problems, path, line_of(text, "pathType: Regex"), "Ingress shop/web", "Unsupported value"
    )


BAD_PATHS = [
    ("api", "must be an absolute path"),
    ("/a//b", "'//'"),
    ("/a/./b", "'/./'"),
    ("/a/../b", "'/../'"),
    ("/a%2fb", "'%2f'"),
    ("/a%2Fb", "'%2F'"),
    ("/a/.", "cannot end with '/.'"),
    ("/a/..", "cannot end with '/..'"),
]


@pytest.mark.parametrize("path_type", ["Exact", "Prefix"])
@pytest.mark.parametrize(("bad", "reason"), BAD_PATHS, ids=[p for p, _ in BAD_PATHS])
def test_invalid_exact_or_prefix_path_names_its_line(
    problems_of: ProblemsOf, bad: str, reason: str, path_type: str
) -> None:
    text = ingress_with_path(f"'{bad}'", path_type)
    path, problems = problems_of(text)
    message = problem_at(problems, path, line_of(text, f"path: '{bad}'"), "Ingress shop/web")
    assert f"path: Invalid value: '{bad}': " in message and reason in message


@pytest.mark.parametrize(
    "good", ["/.well-known/acme-challenge/x", "/a.b/..c/...", "/", "/foo/", "/v1.2/"]
)
def test_dots_inside_segments_are_ordinary_characters(load_yaml: LoadYaml, good: str) -> None:
    config = load_yaml(ingress_with_path(f"'{good}'", "Prefix"))
    assert config.ingresses[0].rules[0].paths[0].path == good


def test_implementation_specific_path_only_has_to_be_absolute(
    load_yaml: LoadYaml, problems_of: ProblemsOf
) -> None:
    assert load_yaml(ingress_with_path("'/a//b'", "ImplementationSpecific")).ingresses
    _, problems = problems_of(ingress_with_path("api", "ImplementationSpecific"))
    assert len(problems) == 1 and "must be an absolute path" in problems[0]


BAD_HOSTS = [
    ("Shop.example.com", "lower-case RFC 1123"),
    ("shop_1.example.com", "lower-case RFC 1123"),
    ("-shop.example.com", "lower-case RFC 1123"),
    ("shop.example.com:8080", "lower-case RFC 1123"),
    ("192.0.2.10", "not an IP address"),
    ("2001:db8::1", "not an IP address"),
    ("foo.*.com", "whole first label"),
    ("*foo.com", "whole first label"),
    ("*", "whole first label"),
    ("*.*.foo.com", "whole first label"),
]


@pytest.mark.parametrize(("host", "reason"), BAD_HOSTS, ids=[h for h, _ in BAD_HOSTS])
def test_invalid_rule_host_names_its_line(problems_of: ProblemsOf, host: str, reason: str) -> None:
    text = ingress_with_path("/", "Prefix").replace("shop.example.com", f"'{host}'")
    path, problems = problems_of(text)
    message = problem_at(problems, path, line_of(text, "- host:"), "Ingress shop/web")
    assert f"spec.rules[0].host: Invalid value: '{host}'" in message and reason in message


def test_invalid_tls_host_names_its_line(problems_of: ProblemsOf) -> None:
    text = kube.dump(
        kube.ingress("web", default=("web", 80), tls=[{"hosts": ["ok.example.com", "Bad.com"]}])
    )
    path, problems = problems_of(text)
    problem_at(problems, path, line_of(text, "- Bad.com"), "Ingress default/web", "hosts[1]")


@pytest.mark.parametrize(
    "host", ["*.example.com", "example.com", "a-1.b2.example.com", "localhost"]
)
def test_valid_hosts_are_accepted(load_yaml: LoadYaml, host: str) -> None:
    config = load_yaml(kube.ingress("web", kube.rule(host, kube.path("/", "web"))))
    assert config.ingresses[0].rules[0].host == host


@pytest.mark.parametrize("number", [0, 65536, -1, "'80'"])
def test_backend_port_number_out_of_range_names_its_line(
    problems_of: ProblemsOf, number: object
) -> None:
    text = ingress_with_path("/", "Prefix", port=f"number: {number}")
    path, problems = problems_of(text)
    message = problem_at(problems, path, line_of(text, "port: {number"), "Ingress shop/web")
    assert "port.number: Invalid value" in message and "must be 1-65535" in message


@pytest.mark.parametrize("port", ["", "number: 80, name: http"], ids=["neither", "both"])
def test_backend_port_needs_exactly_one_of_name_or_number(
    problems_of: ProblemsOf, port: str
) -> None:
    text = ingress_with_path("/", "Prefix", port=port)
    path, problems = problems_of(text)
    message = problem_at(problems, path, line_of(text, "port: {"), "Ingress shop/web")
    assert "exactly one of `name` or `number`" in message


def test_service_port_out_of_range_names_its_line(problems_of: ProblemsOf) -> None:
    text = kube.dump(kube.service("web", kube.service_port(70000, "http")))
    path, problems = problems_of(text)
    problem_at(problems, path, line_of(text, "port: 70000"), "Service default/web", "1-65535")


def test_resource_backend_is_refused_at_its_line(problems_of: ProblemsOf) -> None:
    text = yaml_text(
        """
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: assets
        spec:
          defaultBackend:
            resource:
              apiGroup: k8s.example.com
              kind: StorageBucket
              name: static-assets
        """
    )
    path, problems = problems_of(text)
    problem_at(
        problems, path, line_of(text, "resource:"), "Ingress default/assets", "resource backends"
    )


def test_backend_without_service_is_required(problems_of: ProblemsOf) -> None:
    text = ingress_with_path("/", "Prefix").replace("service:", "svc:")
    path, problems = problems_of(text)
    problem_at(problems, path, line_of(text, "svc:"), "backend.service: Required value")


def test_ingress_without_rules_or_default_backend_names_its_spec(problems_of: ProblemsOf) -> None:
    text = yaml_text(
        """
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: empty
          namespace: shop
        spec:
          ingressClassName: nginx
        """
    )
    path, problems = problems_of(text)
    problem_at(problems, path, line_of(text, "spec:"), "Ingress shop/empty", "either")


def test_unsupported_api_version_names_its_line(problems_of: ProblemsOf) -> None:
    text = yaml_text(
        """
        apiVersion: extensions/v1beta1
        kind: Ingress
        metadata:
          name: legacy
        spec:
          backend: {serviceName: legacy, servicePort: 80}
        """
    )
    path, problems = problems_of(text)
    message = problem_at(problems, path, 1, "Ingress default/legacy")
    assert "'extensions/v1beta1' is not supported" in message
    assert "networking.k8s.io/v1" in message


def test_missing_metadata_name_names_the_metadata_line(problems_of: ProblemsOf) -> None:
    text = yaml_text(
        """
        apiVersion: v1
        kind: Service
        metadata:
          namespace: shop
          labels: {app: web}
        spec:
          ports: [{port: 80}]
        """
    )
    path, problems = problems_of(text)
    problem_at(
        problems, path, line_of(text, "metadata:"), "Service <unnamed>", "metadata.name: Required"
    )


def test_object_without_kind_is_an_error(problems_of: ProblemsOf) -> None:
    path, problems = problems_of("apiVersion: v1\nmetadata: {name: web}\n")
    assert problems == [f"{path}:1: object has no kind"]


def test_object_defined_twice_names_both_places(problems_of: ProblemsOf) -> None:
    text = kube.dump(
        kube.service("web", kube.service_port(80), namespace="shop"),
        kube.service("web", kube.service_port(81), namespace="shop"),
    )
    path, problems = problems_of(text)
    second = line_of(text, "apiVersion: v1", occurrence=2)
    message = problem_at(problems, path, second, "Service shop/web", "defined twice")
    assert f"(first at {path}:1)" in message


def test_same_name_in_another_namespace_or_kind_is_not_a_duplicate(load_yaml: LoadYaml) -> None:
    config = load_yaml(
        kube.service("web", kube.service_port(80), namespace="a"),
        kube.service("web", kube.service_port(80), namespace="b"),
        kube.endpoints("web", ["10.0.0.1"], kube.endpoint_port(80), namespace="a"),
    )
    assert len(config.services) == 2 and len(config.endpoints) == 1


def test_unquoted_annotation_value_is_an_error_naming_its_line(problems_of: ProblemsOf) -> None:
    text = yaml_text(
        """
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: web
          annotations:
            nginx.ingress.kubernetes.io/ssl-redirect: false
        spec:
          defaultBackend: {service: {name: web, port: {number: 80}}}
        """
    )
    path, problems = problems_of(text)
    message = problem_at(problems, path, line_of(text, "ssl-redirect"), "Ingress default/web")
    assert 'must be a string (quote it: "false")' in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("proxy-body-size", "abc"),
        ("proxy-body-size", "1.5m"),
        ("proxy-read-timeout", "soon"),
        ("ssl-redirect", "yes"),
        ("backend-protocol", "SPDY"),
        ("canary-weight", "half"),
        ("canary-weight", "-5"),
        ("canary-weight-total", "0"),
        ("canary-by-header", "X Canary"),
        ("canary-by-header-pattern", r"^v\K2"),  # PCRE's \K: Python's re cannot run it
        ("canary-by-header-pattern", "(?<name>v2)"),  # PCRE's named group syntax
        ("permanent-redirect", "https://example.com/a b"),
        ("permanent-redirect", "https://example.com/\r\nSet-Cookie: x=1"),
        ("permanent-redirect-code", "moved"),
        ("temporal-redirect", "ftp://example.com/"),
        ("app-root", "https://example.com/app"),
        ("app-root", "app"),
        ("server-alias", "Alias.Example.com"),
        ("server-alias", "~^www\\d+\\.example\\.com$"),
        ("from-to-www-redirect", "yes"),
        ("proxy-next-upstream-tries", "many"),
        ("cors-allow-origin", "https://app.example, not an origin"),
        ("cors-allow-methods", "GET; rm -rf"),
        ("cors-allow-headers", "X-Token\r\nSet-Cookie: x"),
        ("cors-max-age", "a day"),
        ("limit-burst-multiplier", "0"),
        ("auth-type", "kerberos"),
        ("satisfy", "some"),
        ("default-backend", "Errors_Svc"),
        ("upstream-vhost", "evil.test\r\nX-Injected: 1"),
        ("upstream-vhost", "evil.test\n"),  # a bare LF would end the upstream head early
        ("cors-allow-methods", "GET,\r\n"),
        ("cors-allow-headers", "X-Token\n"),
        ("canary-by-header", "X-Canary\n"),
        ("auth-secret", "../etc/passwd"),
    ],
)
def test_bad_annotation_value_is_an_error_naming_its_line(
    problems_of: ProblemsOf, name: str, value: str
) -> None:
    key = f"nginx.ingress.kubernetes.io/{name}"
    text = kube.dump(kube.ingress("web", default=("web", 80), annotations={key: value}))
    path, problems = problems_of(text)
    message = problem_at(problems, path, line_of(text, key), "Ingress default/web")
    assert f"metadata.annotations[{key}]: invalid value" in message


def test_bad_base64_in_secret_names_its_line(problems_of: ProblemsOf) -> None:
    secret = kube.tls_secret("web-tls", CERT, KEY, namespace="shop")
    secret["data"]["tls.key"] = "not base64!"
    text = kube.dump(secret)
    path, problems = problems_of(text)
    problem_at(problems, path, line_of(text, "tls.key:"), "Secret shop/web-tls", "invalid base64")
    assert len(problems) == 1  # not also "needs tls.key": it is there, just broken


def test_secret_without_tls_key_is_an_error(problems_of: ProblemsOf) -> None:
    secret = kube.tls_secret("web-tls", CERT, KEY, namespace="shop")
    del secret["data"]["tls.key"]
    text = kube.dump(secret)
    path, problems = problems_of(text)
    problem_at(problems, path, 1, "Secret shop/web-tls", "needs tls.key")


def test_every_error_of_a_file_is_reported_not_only_the_first() -> None:
    broken = DATA / "broken.yaml"
    marked = [
        number
        for number, line in enumerate(broken.read_text().splitlines(), start=1)
        if "# error:" in line
    ]
    with pytest.raises(ConfigError) as caught:
        load_config([str(broken)])
    problems = caught.value.problems
    prefix = f"{broken}:"
    assert all(p.startswith(prefix) for p in problems), problems
    assert sorted(int(p[len(prefix) :].split(":", 1)[0]) for p in problems) == marked
    names = ("Ingress web/blog", "Ingress web/legacy", "Secret web/blog-tls")
    assert all(any(name in p for name in names) for p in problems), problems


def test_errors_of_several_files_are_all_reported(write_yaml: WriteYaml) -> None:
    first = write_yaml(ingress_with_path("api", "Prefix"), name="a.yaml")
    second = write_yaml(kube.dump(kube.service("web", kube.service_port(0))), name="b.yaml")
    with pytest.raises(ConfigError) as caught:
        load_config([first, second])
    assert [p.split(":", 1)[0] for p in caught.value.problems] == [first, second]


# --- warnings -----------------------------------------------------------------------------


def annotated(annotations: dict[str, str]) -> str:
    return kube.dump(kube.ingress("web", default=("web", 80), annotations=annotations))


def test_snippet_annotation_is_refused_with_a_warning(write_yaml: WriteYaml) -> None:
    key = "nginx.ingress.kubernetes.io/configuration-snippet"
    text = annotated({key: "more_set_headers 'X-Debug: 1';"})
    path = write_yaml(text)
    (warning,) = load_config([path]).warnings
    assert warning.startswith(f"{path}:{line_of(text, key)}: Ingress default/web: ")
    assert "refused" in warning and "user-supplied configuration" in warning


def test_unknown_annotation_is_a_warning_never_silently_ignored(write_yaml: WriteYaml) -> None:
    key = "nginx.ingress.kubernetes.io/proxy-bodysize"  # typo of proxy-body-size
    text = annotated({key: "8m"})
    path = write_yaml(text)
    (warning,) = load_config([path]).warnings
    assert warning.startswith(f"{path}:{line_of(text, key)}: Ingress default/web: ")
    assert f"[{key}]: unknown annotation" in warning


def test_annotations_of_other_prefixes_are_not_checked(load_yaml: LoadYaml) -> None:
    config = load_yaml(annotated({"example.com/owner": "team-a", "kubectl.io/x": "1"}))
    assert config.warnings == ()
