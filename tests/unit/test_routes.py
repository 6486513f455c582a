"""`ingressd.routes`: Kubernetes Ingress v1 routing semantics (SPEC §3) and `--check`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ingressd.cli import main
from ingressd.model import ObjectRef
from ingressd.routes import Endpoint, Route, RouteTable, normalize_path
from tests import kube
from tests.kube import CompileYaml, Obj, Port, line_of

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "ingress.yaml"
BROKEN = ROOT / "tests" / "data" / "broken.yaml"


def served_by(route: Route | None) -> str | None:
    """The Service name a request goes to; None for ingressd's own 404."""
    return None if route is None else route.backend.service.name


# --- the Prefix/Exact examples table of the Kubernetes Ingress documentation ---------------

# (kind, [(pathType, path), ...], request path, (pathType, path) that matches, or None)
DOCS_EXAMPLES: list[tuple[str, list[tuple[str, str]], str, tuple[str, str] | None]] = [
    *[("Prefix", [("Prefix", "/")], p, ("Prefix", "/")) for p in ("/", "/foo", "/a/b/", "/x.y")],
    ("Exact", [("Exact", "/foo")], "/foo", ("Exact", "/foo")),
    ("Exact", [("Exact", "/foo")], "/bar", None),
    ("Exact", [("Exact", "/foo")], "/foo/", None),
    ("Exact", [("Exact", "/foo/")], "/foo", None),
    ("Prefix", [("Prefix", "/foo")], "/foo", ("Prefix", "/foo")),
    ("Prefix", [("Prefix", "/foo")], "/foo/", ("Prefix", "/foo")),
    ("Prefix", [("Prefix", "/foo/")], "/foo", ("Prefix", "/foo/")),
    ("Prefix", [("Prefix", "/foo/")], "/foo/", ("Prefix", "/foo/")),
    ("Prefix", [("Prefix", "/aaa/bb")], "/aaa/bbb", None),
    ("Prefix", [("Prefix", "/aaa/bbb")], "/aaa/bbb", ("Prefix", "/aaa/bbb")),
    ("Prefix", [("Prefix", "/aaa/bbb/")], "/aaa/bbb", ("Prefix", "/aaa/bbb/")),
    ("Prefix", [("Prefix", "/aaa/bbb")], "/aaa/bbb/", ("Prefix", "/aaa/bbb")),
    ("Prefix", [("Prefix", "/aaa/bbb")], "/aaa/bbb/ccc", ("Prefix", "/aaa/bbb")),
    ("Prefix", [("Prefix", "/aaa/bbb")], "/aaa/bbbxyz", None),
    ("Prefix", [("Prefix", "/"), ("Prefix", "/aaa")], "/aaa/ccc", ("Prefix", "/aaa")),
    (
        "Prefix",
        [("Prefix", "/"), ("Prefix", "/aaa"), ("Prefix", "/aaa/bbb")],
        "/aaa/bbb",
        ("Prefix", "/aaa/bbb"),
    ),
    (
        "Prefix",
        [("Prefix", "/"), ("Prefix", "/aaa"), ("Prefix", "/aaa/bbb")],
        "/ccc",
        ("Prefix", "/"),
    ),
    ("Prefix", [("Prefix", "/aaa")], "/ccc", None),
    ("Mixed", [("Prefix", "/foo"), ("Exact", "/foo")], "/foo", ("Exact", "/foo")),
]


@pytest.mark.parametrize(
    ("kind", "paths", "request_path", "expected"),
    DOCS_EXAMPLES,
    ids=[f"{k}:{','.join(p for _, p in ps)}<-{r}" for k, ps, r, _ in DOCS_EXAMPLES],
)
def test_kubernetes_documentation_path_examples(
    compile_yaml: CompileYaml,
    kind: str,
    paths: list[tuple[str, str]],
    request_path: str,
    expected: tuple[str, str] | None,
) -> None:
    """https://kubernetes.io/docs/concepts/services-networking/ingress/#examples, row by row.

    "No" rows use the Ingress's default backend, as the documentation says.
    """
    items = [kube.path(p, f"svc-{i}", 80, t) for i, (t, p) in enumerate(paths)]
    table = compile_yaml(kube.ingress("docs", kube.rule(None, *items), default=("fallback", 80)))
    route = table.match("foo.example.com", request_path)
    assert route is not None
    if expected is None:
        assert (route.path, served_by(route)) == (None, "fallback")
    else:
        assert route.path_type is not None
        assert (route.path_type.value, route.path) == expected


def test_prefix_matching_is_case_sensitive(compile_yaml: CompileYaml) -> None:
    table = compile_yaml(kube.ingress("web", kube.rule(None, kube.path("/Foo", "web"))))
    assert served_by(table.match("a.com", "/Foo/x")) == "web"
    assert table.match("a.com", "/foo/x") is None


# --- hosts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "matches"),
    [("bar.foo.com", True), ("baz.bar.foo.com", False), ("foo.com", False), ("xfoo.com", False)],
)
def test_wildcard_host_matches_exactly_one_extra_label(
    compile_yaml: CompileYaml, host: str, matches: bool
) -> None:
    table = compile_yaml(kube.ingress("wild", kube.rule("*.foo.com", kube.path("/", "wild"))))
    assert served_by(table.match(host, "/")) == ("wild" if matches else None)


def test_exact_host_beats_wildcard_host(compile_yaml: CompileYaml) -> None:
    table = compile_yaml(
        kube.ingress("wild", kube.rule("*.foo.com", kube.path("/", "wild"))),
        kube.ingress("exact", kube.rule("bar.foo.com", kube.path("/", "exact"))),
    )
    assert served_by(table.match("bar.foo.com", "/")) == "exact"
    assert served_by(table.match("baz.foo.com", "/")) == "wild"


def test_matched_host_never_falls_through_to_less_specific_rules(
    compile_yaml: CompileYaml,
) -> None:
    table = compile_yaml(
        kube.ingress(
            "hosts",
            kube.rule("foo.com", kube.path("/api", "exact-api")),
            kube.rule("*.foo.com", kube.path("/api", "wild-api")),
            kube.rule(None, kube.path("/", "any")),
        )
    )
    assert table.match("foo.com", "/other") is None
    assert table.match("bar.foo.com", "/other") is None
    assert served_by(table.match("other.com", "/other")) == "any"


def test_wildcard_host_never_falls_through_to_no_host_rules(compile_yaml: CompileYaml) -> None:
    table = compile_yaml(
        kube.ingress("wild", kube.rule("*.foo.com", kube.path("/api", "wild-api"))),
        kube.ingress("any", kube.rule(None, kube.path("/", "any"))),
    )
    assert table.match("x.foo.com", "/") is None
    assert served_by(table.match("x.foo.com", "/api")) == "wild-api"


def test_rules_of_several_ingresses_for_one_host_are_merged(compile_yaml: CompileYaml) -> None:
    table = compile_yaml(
        kube.ingress("shop", kube.rule("shop.com", kube.path("/", "storefront"))),
        kube.ingress("api", kube.rule("shop.com", kube.path("/api", "api"))),
    )
    assert served_by(table.match("shop.com", "/api/cart")) == "api"
    assert served_by(table.match("shop.com", "/cart")) == "storefront"
    assert table.ingresses == (ObjectRef("default", "api"), ObjectRef("default", "shop"))


# --- precedence ------------------------------------------------------------------------


def test_longest_matching_path_wins_across_ingresses(compile_yaml: CompileYaml) -> None:
    table = compile_yaml(
        kube.ingress("short", kube.rule("a.com", kube.path("/a", "short"))),
        kube.ingress("long", kube.rule("a.com", kube.path("/a/b", "long"))),
    )
    assert served_by(table.match("a.com", "/a/b/c")) == "long"
    assert served_by(table.match("a.com", "/a/bc")) == "short"


def test_exact_beats_prefix_of_equal_length(compile_yaml: CompileYaml) -> None:
    table = compile_yaml(
        kube.ingress(
            "tie",
            kube.rule(
                "a.com",
                kube.path("/foo/", "prefix"),  # length counted without its trailing slash
                kube.path("/foo", "exact", path_type="Exact"),
            ),
        )
    )
    assert served_by(table.match("a.com", "/foo")) == "exact"
    assert served_by(table.match("a.com", "/foo/")) == "prefix"


def test_longer_prefix_beats_shorter_exact_that_does_not_match(compile_yaml: CompileYaml) -> None:
    table = compile_yaml(
        kube.ingress(
            "mixed",
            kube.rule(
                "a.com",
                kube.path("/a", "exact", path_type="Exact"),
                kube.path("/a/b", "prefix"),
            ),
        )
    )
    assert served_by(table.match("a.com", "/a/b")) == "prefix"
    assert served_by(table.match("a.com", "/a")) == "exact"


def test_implementation_specific_behaves_as_prefix(compile_yaml: CompileYaml) -> None:
    item = kube.path("/docs", "docs", path_type="ImplementationSpecific")
    table = compile_yaml(kube.ingress("docs", kube.rule("a.com", item)))
    assert served_by(table.match("a.com", "/docs/v1")) == "docs"
    assert table.match("a.com", "/docsv1") is None


# --- default backends ------------------------------------------------------------------


def test_ingress_default_backend_serves_unmatched_paths_of_its_hosts(
    compile_yaml: CompileYaml,
) -> None:
    table = compile_yaml(
        kube.ingress("shop", kube.rule("shop.com", kube.path("/api", "api")), default=("shop", 80)),
        kube.ingress("blog", kube.rule("blog.com", kube.path("/api", "blog-api"))),
    )
    route = table.match("shop.com", "/cart")
    assert route is not None and (route.path, route.ingress.name) == (None, "shop")
    assert served_by(route) == "shop"
    assert table.match("blog.com", "/cart") is None  # not for another Ingress's host


def test_catch_all_serves_unmatched_hosts_and_paths(compile_yaml: CompileYaml) -> None:
    table = compile_yaml(
        kube.ingress("blog", kube.rule("blog.com", kube.path("/api", "blog-api"))),
        kube.ingress("catch-all", default=("catch-all", 80)),
    )
    assert served_by(table.match("blog.com", "/cart")) == "catch-all"
    assert served_by(table.match("unknown.com", "/")) == "catch-all"
    assert served_by(table.match("blog.com", "/api")) == "blog-api"


def test_host_default_backend_beats_catch_all(compile_yaml: CompileYaml) -> None:
    table = compile_yaml(
        kube.ingress("catch-all", default=("catch-all", 80)),
        kube.ingress("shop", kube.rule("shop.com", kube.path("/api", "api")), default=("shop", 80)),
    )
    assert served_by(table.match("shop.com", "/cart")) == "shop"
    assert served_by(table.match("other.com", "/cart")) == "catch-all"


def test_no_default_and_no_catch_all_is_a_404(compile_yaml: CompileYaml) -> None:
    table = compile_yaml(kube.ingress("shop", kube.rule("shop.com", kube.path("/api", "api"))))
    assert table.match("shop.com", "/cart") is None
    assert table.match("other.com", "/api") is None
    assert table.catch_all is None


def test_unmatched_path_of_no_host_rules_goes_to_catch_all(compile_yaml: CompileYaml) -> None:
    table = compile_yaml(
        kube.ingress("any", kube.rule(None, kube.path("/api", "api"))),
        kube.ingress("catch-all", default=("catch-all", 80)),
    )
    assert served_by(table.match("x.com", "/api")) == "api"
    assert served_by(table.match("x.com", "/")) == "catch-all"


def test_oldest_catch_all_wins_with_a_warning(compile_yaml: CompileYaml) -> None:
    table = compile_yaml(
        kube.ingress("new", default=("new", 80), created="2024-06-01T00:00:00Z"),
        kube.ingress("old", default=("old", 80), created="2024-01-01T00:00:00Z"),
    )
    assert served_by(table.catch_all) == "old"
    (warning,) = [w for w in table.warnings if "catch-all" in w]
    assert "Ingress default/new" in warning and "Ingress default/old wins" in warning


def test_oldest_host_default_backend_wins_with_a_warning(compile_yaml: CompileYaml) -> None:
    rule = kube.rule("a.com", kube.path("/x", "x"))
    table = compile_yaml(
        kube.ingress("new", rule, default=("new", 80), created="2024-06-01T00:00:00Z"),
        kube.ingress("old", rule, default=("old", 80), created="2024-01-01T00:00:00Z"),
    )
    assert served_by(table.match("a.com", "/y")) == "old"
    assert any("defaultBackend of host a.com" in w for w in table.warnings)


# --- ingress classes ---------------------------------------------------------------------

LEGACY = "kubernetes.io/ingress.class"


def classed_ingresses(default_class: str | None) -> list[Obj]:
    rule = kube.rule(None, kube.path("/", "web"))
    return [
        kube.ingress_class("nginx", default=default_class == "nginx"),
        kube.ingress_class("other", default=default_class == "other"),
        kube.ingress("by-name", rule, class_name="nginx"),
        kube.ingress("by-annotation", rule, annotations={LEGACY: "nginx"}),
        kube.ingress("other-class", rule, class_name="other"),
        kube.ingress("other-annotation", rule, annotations={LEGACY: "other"}),
        kube.ingress("class-less", rule),
    ]


def served(table: RouteTable) -> set[str]:
    return {ref.name for ref in table.ingresses}


def test_without_ingress_class_every_ingress_is_served(compile_yaml: CompileYaml) -> None:
    table = compile_yaml(*classed_ingresses(None))
    assert served(table) == {
        "by-name",
        "by-annotation",
        "other-class",
        "other-annotation",
        "class-less",
    }


def test_ingress_class_selects_class_name_and_legacy_annotation(
    compile_yaml: CompileYaml,
) -> None:
    table = compile_yaml(*classed_ingresses(None), ingress_class="nginx")
    assert served(table) == {"by-name", "by-annotation"}


def test_class_less_ingress_is_served_when_the_class_is_the_default(
    compile_yaml: CompileYaml,
) -> None:
    table = compile_yaml(*classed_ingresses("nginx"), ingress_class="nginx")
    assert served(table) == {"by-name", "by-annotation", "class-less"}


def test_class_less_ingress_is_not_served_when_another_class_is_default(
    compile_yaml: CompileYaml,
) -> None:
    table = compile_yaml(*classed_ingresses("other"), ingress_class="nginx")
    assert served(table) == {"by-name", "by-annotation"}


def test_ingress_class_name_wins_over_legacy_annotation(compile_yaml: CompileYaml) -> None:
    rule = kube.rule(None, kube.path("/", "web"))
    both = kube.ingress("both", rule, class_name="other", annotations={LEGACY: "nginx"})
    assert served(compile_yaml(both, ingress_class="nginx")) == set()
    assert served(compile_yaml(both, ingress_class="other")) == {"both"}


# --- duplicates between Ingresses -----------------------------------------------------


def rival(name: str, namespace: str | None = None, created: str | None = None) -> Obj:
    rule = kube.rule("a.com", kube.path("/x", f"svc-{name}"))
    return kube.ingress(name, rule, namespace=namespace, created=created)


def test_duplicate_path_goes_to_the_oldest_ingress_with_a_warning_naming_both(
    compile_yaml: CompileYaml,
) -> None:
    table = compile_yaml(
        rival("a-new", created="2024-06-01T00:00:00Z"),
        rival("z-old", created="2024-01-01T00:00:00Z"),
    )
    assert served_by(table.match("a.com", "/x")) == "svc-z-old"
    (warning,) = [w for w in table.warnings if "also claimed" in w]
    assert "Ingress default/a-new" in warning and "Ingress default/z-old" in warning
    assert "host a.com path /x (Prefix)" in warning


def test_duplicate_path_with_equal_age_goes_to_namespace_then_name_order(
    compile_yaml: CompileYaml,
) -> None:
    table = compile_yaml(
        rival("a", namespace="shop"),
        rival("z", namespace="admin"),
        rival("b", namespace="admin"),
    )
    assert served_by(table.match("a.com", "/x")) == "svc-b"
    assert sum("Ingress admin/b wins" in w for w in table.warnings) == 2


def test_ingress_without_creation_timestamp_counts_as_newest(compile_yaml: CompileYaml) -> None:
    table = compile_yaml(rival("a-untimed"), rival("z-timed", created="2024-01-01T00:00:00Z"))
    assert served_by(table.match("a.com", "/x")) == "svc-z-timed"


def test_creation_timestamps_are_compared_as_instants_not_text(compile_yaml: CompileYaml) -> None:
    # 01:00 at +02:00 is 23:00 UTC the day before: older than 00:00Z, though it sorts after.
    table = compile_yaml(
        rival("utc", created="2024-01-01T00:00:00Z"),
        rival("offset", created="2024-01-01T01:00:00+02:00"),
    )
    assert served_by(table.match("a.com", "/x")) == "svc-offset"


def test_same_path_with_another_path_type_is_not_a_duplicate(compile_yaml: CompileYaml) -> None:
    table = compile_yaml(
        kube.ingress("exact", kube.rule("a.com", kube.path("/x", "exact", path_type="Exact"))),
        kube.ingress("prefix", kube.rule("a.com", kube.path("/x", "prefix"))),
    )
    assert served_by(table.match("a.com", "/x")) == "exact"
    assert served_by(table.match("a.com", "/x/y")) == "prefix"
    assert not [w for w in table.warnings if "also claimed" in w]


# --- backends: Service port → endpoint port, ready endpoints ---------------------------


def backend_of(table: RouteTable, host: str = "a.com", path: str = "/") -> tuple[Endpoint, ...]:
    route = table.match(host, path)
    assert route is not None
    return route.backend.endpoints


def one_route(port: Port = 80) -> Obj:
    return kube.ingress("web", kube.rule("a.com", kube.path("/", "web", port)))


def test_backend_port_by_number_uses_the_endpoint_port_of_that_service_port(
    compile_yaml: CompileYaml,
) -> None:
    table = compile_yaml(
        one_route(80),
        kube.service("web", kube.service_port(80, "http", "web")),
        kube.endpoints("web", ["10.0.0.1"], kube.endpoint_port(3000, "http")),
    )
    assert backend_of(table) == (Endpoint("10.0.0.1", 3000),)


def test_backend_port_by_name_with_a_named_target_port(compile_yaml: CompileYaml) -> None:
    table = compile_yaml(
        one_route("http"),
        kube.service("web", kube.service_port(80, "http", "web")),
        kube.endpoints("web", ["10.0.0.1"], kube.endpoint_port(3000, "http")),
    )
    assert backend_of(table) == (Endpoint("10.0.0.1", 3000),)


def test_endpoint_port_is_chosen_by_the_service_port_name_not_by_order(
    compile_yaml: CompileYaml,
) -> None:
    table = compile_yaml(
        kube.ingress(
            "web",
            kube.rule("a.com", kube.path("/", "web", "http"), kube.path("/metrics", "web", 9090)),
        ),
        kube.service(
            "web", kube.service_port(80, "http", "web"), kube.service_port(9090, "metrics", 9100)
        ),
        kube.endpoints(
            "web",
            ["10.0.0.1"],
            kube.endpoint_port(9100, "metrics"),
            kube.endpoint_port(3000, "http"),
        ),
    )
    assert backend_of(table, path="/") == (Endpoint("10.0.0.1", 3000),)
    assert backend_of(table, path="/metrics") == (Endpoint("10.0.0.1", 9100),)


def test_unnamed_single_service_port_uses_the_only_endpoint_port(
    compile_yaml: CompileYaml,
) -> None:
    table = compile_yaml(
        one_route(80),
        kube.service("web", kube.service_port(80, target=8080)),
        kube.endpoints("web", ["10.0.0.1"], kube.endpoint_port(9000)),
    )
    assert backend_of(table) == (Endpoint("10.0.0.1", 9000),)


def test_numeric_target_port_is_the_fallback_when_no_endpoint_port_matches(
    compile_yaml: CompileYaml,
) -> None:
    table = compile_yaml(
        one_route(80),
        kube.service("web", kube.service_port(80, target=8080)),
        kube.endpoints("web", ["10.0.0.1"]),  # a hand-written Endpoints without ports
    )
    assert backend_of(table) == (Endpoint("10.0.0.1", 8080),)


def test_target_port_defaults_to_the_service_port(compile_yaml: CompileYaml) -> None:
    table = compile_yaml(
        one_route(80),
        kube.service("web", kube.service_port(80)),
        kube.endpoints("web", ["10.0.0.1"]),
    )
    assert backend_of(table) == (Endpoint("10.0.0.1", 80),)


def test_named_target_port_without_matching_endpoint_port_has_no_endpoints(
    compile_yaml: CompileYaml,
) -> None:
    table = compile_yaml(
        one_route(80),
        kube.service("web", kube.service_port(80, "http", "web")),
        kube.endpoints("web", ["10.0.0.1"], kube.endpoint_port(3000, "grpc")),
    )
    assert backend_of(table) == ()


def test_not_ready_addresses_are_not_used(compile_yaml: CompileYaml) -> None:
    table = compile_yaml(
        one_route(),
        kube.service("web", kube.service_port(80, "http")),
        kube.endpoints(
            "web", ["10.0.0.1"], kube.endpoint_port(8080, "http"), not_ready=["10.0.0.2"]
        ),
        kube.endpoint_slice(
            "web-x",
            "web",
            [kube.slice_endpoint("10.0.0.3", ready=False), kube.slice_endpoint("10.0.0.4")],
            kube.endpoint_port(8080, "http"),
        ),
    )
    assert backend_of(table) == (Endpoint("10.0.0.1", 8080), Endpoint("10.0.0.4", 8080))


def slice_of(*items: Obj) -> Obj:
    return kube.endpoint_slice("web-x", "web", list(items), kube.endpoint_port(8080, "http"))


def test_serving_terminating_endpoints_are_used_when_none_is_ready(
    compile_yaml: CompileYaml,
) -> None:
    terminating = kube.slice_endpoint("10.0.0.1", ready=False, serving=True, terminating=True)
    not_ready = kube.slice_endpoint("10.0.0.2", ready=False, serving=False, terminating=False)
    table = compile_yaml(
        one_route(),
        kube.service("web", kube.service_port(80, "http")),
        slice_of(terminating, not_ready),
    )
    assert backend_of(table) == (Endpoint("10.0.0.1", 8080),)


def test_serving_terminating_endpoints_are_not_used_while_one_is_ready(
    compile_yaml: CompileYaml,
) -> None:
    terminating = kube.slice_endpoint("10.0.0.1", ready=False, serving=True, terminating=True)
    ready = kube.slice_endpoint("10.0.0.2", ready=True)
    table = compile_yaml(
        one_route(),
        kube.service("web", kube.service_port(80, "http")),
        slice_of(terminating, ready),
    )
    assert backend_of(table) == (Endpoint("10.0.0.2", 8080),)


def test_no_ready_or_serving_endpoint_is_a_backend_without_endpoints(
    compile_yaml: CompileYaml,
) -> None:
    table = compile_yaml(
        one_route(),
        kube.service("web", kube.service_port(80, "http")),
        slice_of(kube.slice_endpoint("10.0.0.1", ready=False)),
    )
    route = table.match("a.com", "/")
    assert route is not None and route.backend.endpoints == ()
    assert route.backend.problem == "no ready endpoints"


def test_endpoints_and_endpoint_slices_of_one_service_are_merged_without_duplicates(
    compile_yaml: CompileYaml,
) -> None:
    table = compile_yaml(
        one_route(),
        kube.service("web", kube.service_port(80, "http")),
        kube.endpoints("web", ["10.0.0.1", "10.0.0.2"], kube.endpoint_port(8080, "http")),
        kube.endpoint_slice(
            "web-a",
            "web",
            [kube.slice_endpoint("10.0.0.1"), kube.slice_endpoint("10.0.0.3")],
            kube.endpoint_port(8080, "http"),
        ),
        kube.endpoint_slice(
            "web-b", "web", [kube.slice_endpoint("10.0.0.2")], kube.endpoint_port(8080, "http")
        ),
    )
    assert backend_of(table) == (
        Endpoint("10.0.0.1", 8080),
        Endpoint("10.0.0.2", 8080),
        Endpoint("10.0.0.3", 8080),
    )


def test_services_and_endpoints_resolve_in_the_ingress_namespace(
    compile_yaml: CompileYaml,
) -> None:
    table = compile_yaml(
        kube.ingress("web", kube.rule("a.com", kube.path("/", "web")), namespace="shop"),
        kube.service("web", kube.service_port(80), namespace="shop"),
        kube.endpoints("web", ["10.0.0.1"], kube.endpoint_port(80), namespace="shop"),
        kube.service("web", kube.service_port(80)),
        kube.endpoints("web", ["10.9.9.9"], kube.endpoint_port(80)),
    )
    route = table.match("a.com", "/")
    assert route is not None and route.backend.service == ObjectRef("shop", "web")
    assert route.backend.endpoints == (Endpoint("10.0.0.1", 80),)


def test_externalname_service_is_its_external_name_and_port(compile_yaml: CompileYaml) -> None:
    table = compile_yaml(
        kube.ingress(
            "pay",
            kube.rule(
                "a.com", kube.path("/pay", "psp", "https"), kube.path("/legacy", "psp-bare", 8443)
            ),
        ),
        kube.service("psp", kube.service_port(443, "https"), external_name="pay.example.net"),
        kube.service("psp-bare", external_name="old.example.net"),
    )
    assert backend_of(table, path="/pay") == (Endpoint("pay.example.net", 443),)
    assert backend_of(table, path="/legacy") == (Endpoint("old.example.net", 8443),)


@pytest.mark.parametrize(
    ("objects", "problem"),
    [
        ([], "service default/web not found"),
        ([kube.service("web", kube.service_port(81, "http"))], "service has no port 80"),
        ([kube.service("web", kube.service_port(80, "http"))], "no ready endpoints"),
    ],
    ids=["missing-service", "missing-port", "no-endpoints"],
)
def test_unresolvable_backend_has_no_endpoints_and_a_warning(
    compile_yaml: CompileYaml, objects: list[Obj], problem: str
) -> None:
    text = kube.dump(one_route(80), *objects)
    table = compile_yaml(text)
    route = table.match("a.com", "/")
    assert route is not None and route.backend.endpoints == () and route.backend.problem == problem
    (warning,) = table.warnings
    assert warning.endswith(f"Ingress default/web: backend web:80: {problem}; requests get 503")
    assert f".yaml:{line_of(text, 'apiVersion: networking.k8s.io/v1')}: " in warning


# --- normalize_path --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("/%61dmin", "/admin"),
        ("/x/../admin", "/admin"),
        ("/%2e%2e/admin", "/admin"),
        ("/x/%2E%2E/admin", "/admin"),
        ("//a", "/a"),
        ("/a//b///c", "/a/b/c"),
        ("/a/./b", "/a/b"),
        ("/a/b/.", "/a/b/"),
        ("/a/b/..", "/a/"),
        ("/..", "/"),
        ("/../../etc/passwd", "/etc/passwd"),
        ("/a%2Fb", "/a%2Fb"),
        ("/a%2fb", "/a%2Fb"),
        ("/a%20b", "/a%20b"),
        ("/search?q=/../x", "/search"),
        ("/a/?", "/a/"),
        ("/.well-known/acme-challenge/x", "/.well-known/acme-challenge/x"),
        ("/Admin/", "/Admin/"),
    ],
)
def test_normalize_path(raw: str, normalized: str) -> None:
    assert normalize_path(raw) == normalized


def test_normalized_path_cannot_reach_another_route(compile_yaml: CompileYaml) -> None:
    table = compile_yaml(
        kube.ingress(
            "web",
            kube.rule(
                "a.com",
                kube.path("/admin", "admin", path_type="Exact"),
                kube.path("/", "public"),
            ),
        )
    )
    for raw in ("/%61dmin", "/x/../admin", "//admin", "/./admin?debug=1"):
        assert served_by(table.match("a.com", normalize_path(raw))) == "admin", raw


# --- ingressd --check ------------------------------------------------------------------


def test_check_prints_the_route_table_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check", "--config", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "Ingresses served: 1\n  default/hello\n" in out
    assert (
        "  hello.example.com  /api  Prefix  → default/hello:80 → 127.0.0.3:9003, 127.0.0.4:9003"
        "  [ingress default/hello]\n"
    ) in out
    assert (
        "  hello.example.com  /  Prefix  → default/frontend:http → 127.0.0.1:9001, 127.0.0.2:9002"
    ) in out
    assert "TLS hosts: 1\n  hello.example.com  → secret default/hello-tls" in out


def test_check_prints_every_error_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check", "--config", str(BROKEN)]) == 1
    captured = capsys.readouterr()
    errors = captured.err.splitlines()
    marked = sum("# error:" in line for line in BROKEN.read_text().splitlines())
    assert errors[-1] == f"{marked} error(s); configuration rejected"
    assert all(line.startswith(f"{BROKEN}:") for line in errors[:-1])
    assert len(errors[:-1]) == marked
    assert "Routes:" not in captured.out


def test_check_prints_the_warnings_even_when_there_are_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    prefix = "nginx.ingress.kubernetes.io/"
    typo = kube.ingress("typo", default=("web", 80), annotations={prefix + "proxy-bodysize": "1m"})
    bad = kube.ingress("bad", default=("web", 80), annotations={prefix + "canary-weight": "x"})
    config = tmp_path / "mixed.yaml"
    config.write_text(kube.dump(typo, bad))
    assert main(["--check", "--config", str(config)]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert "Ingress default/bad" in errors[0] and "canary-weight" in errors[0]
    assert errors[1] == "Warnings: 1"
    assert "Ingress default/typo" in errors[2] and "unknown annotation" in errors[2]
    assert errors[-1] == "1 error(s); configuration rejected"


def test_check_with_ingress_class_lists_only_the_chosen_ingresses(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "classes.yaml"
    config.write_text(kube.dump(*classed_ingresses("nginx")))
    assert main(["--check", "--config", str(config), "--ingress-class", "other"]) == 0
    out = capsys.readouterr().out
    assert "Ingresses served: 2\n" in out
    assert "default/other-class" in out and "default/class-less" not in out


@pytest.mark.parametrize(
    "command",
    [[str(Path(sys.executable).with_name("ingressd"))], [sys.executable, "-m", "ingressd"]],
    ids=["console-script", "python-m"],
)
def test_check_runs_as_a_real_command(command: list[str]) -> None:
    ok = subprocess.run(
        [*command, "--check", "--config", str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (ok.returncode, ok.stderr) == (0, "")
    assert "hello.example.com  /api  Prefix" in ok.stdout
    broken = subprocess.run(
        [*command, "--check", "--config", str(BROKEN)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert broken.returncode == 1
    assert f"{BROKEN}:13: Ingress web/blog: spec.rules[0].host" in broken.stderr


# --- canaries and regex hosts (policy attached at compile time) --------------------------

CANARY = {"nginx.ingress.kubernetes.io/canary": "true"}


def test_the_oldest_canary_attaches_and_the_others_are_named(compile_yaml: CompileYaml) -> None:
    main_rule = kube.rule("app.test", kube.path("/", "main"))
    table = compile_yaml(
        kube.ingress("main", main_rule, created="2026-01-03T00:00:00Z"),
        kube.ingress("second", kube.rule("app.test", kube.path("/", "two")),
                     annotations=CANARY, created="2026-01-02T00:00:00Z"),
        kube.ingress("first", kube.rule("app.test", kube.path("/", "one")),
                     annotations=CANARY, created="2026-01-01T00:00:00Z"),
        kube.ingress("other", kube.rule("other.test", kube.path("/", "main"))),
        kube.ingress("same", kube.rule("other.test", kube.path("/", "main")),
                     annotations=CANARY, created="2026-01-04T00:00:00Z"),
    )  # fmt: skip
    route = table.match("app.test", "/x")
    assert route is not None and route.ingress == ObjectRef("default", "main")
    assert route.canary is not None and route.canary.ingress == ObjectRef("default", "first")
    assert route.canary.labels == ("default", "first", "one", "true")
    warnings = "\n".join(table.warnings)
    assert "Ingress default/second: canary for host app.test path / (Prefix): Ingress " in warnings
    assert "default/first is already its canary" in warnings
    assert (
        "Ingress default/same: canary for host other.test path / (Prefix): its service" in warnings
    )
    other = table.match("other.test", "/")
    assert other is not None and other.canary is None
    # Every backend, canary ones included, gets a balancer.
    assert {b.service.name for b in table.backends()} == {"main", "one"}


def test_a_regex_host_tries_ingress_nginx_locations_longest_first(
    compile_yaml: CompileYaml,
) -> None:
    regex = {"nginx.ingress.kubernetes.io/use-regex": "true"}
    table = compile_yaml(
        kube.ingress("regex", kube.rule("r.test", kube.path("/v[0-9]/.*", "api",
                                                            path_type="ImplementationSpecific")),
                     annotations=regex),
        kube.ingress("plain", kube.rule("r.test", kube.path("/docs", "docs"),
                                        kube.path("/", "root"))),
    )  # fmt: skip
    expect = {
        "/v1/items": "api",
        "/V2/x": "api",
        "/docs": "docs",  # the exact location ingress-nginx adds for a Prefix path
        "/docs/a": "docs",  # its /docs/ location
        "/docsy": "docs",  # and what the regex ^/docs also takes
        "/DOCS": "docs",
        "/v1": "root",
        "/": "root",
    }
    for path, service in expect.items():
        route = table.match("r.test", path)
        assert route is not None and route.backend.service.name == service, path
