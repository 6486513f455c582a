"""`RouteTable.match` against a brute-force matcher written straight from SPEC §3.

The reference looks at every rule of every Ingress for each request; the route
compiler builds a host map and a segment trie.  They must agree on random rule
sets (a few hosts incl. wildcards and no host, paths over a tiny alphabet so that
collisions, nesting and trailing slashes are frequent).  Objects are built as
model dataclasses: the YAML path is covered by test_config, and hypothesis
shrinks these to readable counterexamples.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from ingressd.model import (
    Config,
    Ingress,
    IngressPath,
    IngressRule,
    ObjectRef,
    Origin,
    PathType,
    ServiceBackend,
)
from ingressd.routes import compile_routes, normalize_path

ORIGIN = Origin("generated.yaml", 1)
RULE_HOSTS = [None, "foo.com", "bar.foo.com", "*.foo.com", "*.bar.foo.com"]
REQUEST_HOSTS = [
    "foo.com",
    "bar.foo.com",
    "baz.foo.com",
    "x.bar.foo.com",
    "y.x.bar.foo.com",
    "other.com",
    "com",
]
SEGMENTS = ["a", "b", "ab"]
TIMES = [None, datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC)]
NAMES = ["ns-b/w", "ns-a/x", "ns-a/y", "ns-b/z"]


def path_from(segments: list[str], trailing_slash: bool) -> str:
    path = "/" + "/".join(segments)
    return path + "/" if segments and trailing_slash else path


rule_paths = st.builds(path_from, st.lists(st.sampled_from(SEGMENTS), max_size=3), st.booleans())
request_paths = st.builds(
    path_from, st.lists(st.sampled_from([*SEGMENTS, "c"]), max_size=4), st.booleans()
)


@st.composite
def ingresses(draw: st.DrawFn) -> list[Ingress]:
    names = draw(st.permutations(NAMES))[: draw(st.integers(1, len(NAMES)))]
    result = []
    for name in names:
        namespace, short = name.split("/")
        rules = []
        for r in range(draw(st.integers(0, 3))):
            items = tuple(
                IngressPath(
                    draw(rule_paths),
                    draw(st.sampled_from(PathType)),
                    ServiceBackend(f"{short}-{r}-{p}", 80),
                    ORIGIN,
                )
                for p in range(draw(st.integers(1, 3)))
            )
            rules.append(IngressRule(draw(st.sampled_from(RULE_HOSTS)), items, ORIGIN))
        has_default = draw(st.booleans()) if rules else True  # the API needs one or the other
        result.append(
            Ingress(
                ref=ObjectRef(namespace, short),
                origin=ORIGIN,
                created=draw(st.sampled_from(TIMES)),
                default_backend=ServiceBackend(f"{short}-default", 80) if has_default else None,
                rules=tuple(rules),
            )
        )
    return result


# --- the reference: SPEC §3, one sentence at a time -----------------------------------


@dataclass(frozen=True)
class Candidate:
    host: str | None
    item: IngressPath
    order: int  # position in the oldest-first order of all paths: the tie-break


def oldest_first(items: list[Ingress]) -> list[Ingress]:
    """Older creationTimestamp first (none counts as newest), then (namespace, name)."""
    never = datetime.max.replace(tzinfo=UTC)
    return sorted(items, key=lambda i: (i.created or never, i.ref.namespace, i.ref.name))


def path_matches(item: IngressPath, request: str) -> bool:
    if item.path_type is PathType.EXACT:
        return item.path == request  # exactly, no trailing-slash folding
    rule_elements = [e for e in item.path.split("/") if e]
    request_elements = [e for e in request.split("/") if e]
    return request_elements[: len(rule_elements)] == rule_elements


def length(item: IngressPath) -> int:
    return len(item.path if item.path_type is PathType.EXACT else item.path.rstrip("/"))


def choose_host(items: list[Ingress], host: str) -> tuple[bool, str | None]:
    """(found, rule host): an exact host rule, else a one-label wildcard, else no-host rules."""
    rule_hosts = {rule.host for ingress in items for rule in ingress.rules}
    if host in rule_hosts:
        return True, host
    label, _, parent = host.partition(".")
    if label and parent and f"*.{parent}" in rule_hosts:
        return True, f"*.{parent}"
    return (None in rule_hosts), None


def reference(items: list[Ingress], host: str, path: str) -> str | None:
    """The Service that serves (host, path), or None for a 404."""
    ordered = oldest_first(items)
    catch_all = next(
        (i.default_backend.service for i in ordered if not i.rules and i.default_backend), None
    )
    found, chosen = choose_host(ordered, host)
    if not found:
        return catch_all
    candidates = [
        Candidate(rule.host, item, order)
        for order, (rule, item) in enumerate(
            (rule, item) for ingress in ordered for rule in ingress.rules for item in rule.paths
        )
        if rule.host == chosen and path_matches(item, path)
    ]
    if candidates:
        best = min(
            candidates,
            key=lambda c: (-length(c.item), c.item.path_type is not PathType.EXACT, c.order),
        )
        return best.item.backend.service
    for ingress in ordered:
        if ingress.default_backend and any(rule.host == chosen for rule in ingress.rules):
            return ingress.default_backend.service
    return catch_all


# --- the properties ------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    items=ingresses(),
    requests=st.lists(
        st.tuples(st.sampled_from(REQUEST_HOSTS), request_paths), min_size=1, max_size=8
    ),
)
def test_route_table_agrees_with_a_brute_force_reading_of_the_spec(
    items: list[Ingress], requests: list[tuple[str, str]]
) -> None:
    table = compile_routes(Config(ingresses=tuple(items)))
    for host, path in requests:
        route = table.match(host, path)
        got = None if route is None else route.backend.service.name
        assert got == reference(items, host, path), (host, path)


@settings(max_examples=300, deadline=None)
@given(items=ingresses(), host=st.sampled_from(REQUEST_HOSTS), path=request_paths)
def test_route_table_does_not_depend_on_the_order_of_the_files(
    items: list[Ingress], host: str, path: str
) -> None:
    forward = compile_routes(Config(ingresses=tuple(items))).match(host, path)
    backward = compile_routes(Config(ingresses=tuple(reversed(items)))).match(host, path)
    assert forward == backward


PATH_PIECES = [
    "a",
    "b",
    "",
    ".",
    "..",
    "%2e",
    "%2E%2e",
    "%2f",
    "%2F",
    "%61",
    "%7e",
    "%20",
    "a?q=/..",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PATH_PIECES), max_size=6))
def test_normalized_path_is_canonical(pieces: list[str]) -> None:
    normalized = normalize_path("/" + "/".join(pieces))
    assert normalized.startswith("/")
    assert "?" not in normalized
    assert "//" not in normalized
    assert not {".", ".."} & set(normalized.split("/"))
    assert "%2e" not in normalized.lower() and "%61" not in normalized
    assert normalize_path(normalized) == normalized
