"""Compile a `Config` into an immutable `RouteTable`: (host, path) → `Route`.

Owns: Kubernetes Ingress v1 routing semantics (SPEC §3): host precedence
(exact → one-label wildcard → no-host), Exact map + Prefix segment trie with
longest match, default backends, class filtering, tie-breaks between objects,
and backend resolution (Service port → endpoint port, ready endpoints).
Pure: no I/O, no asyncio.  A lookup costs O(path segments), whatever the
number of rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC
from typing import Final

from . import htpasswd, http1
from .annotations import BasicAuth, Cors, IngressPolicy, Limits, canary_rule, policy_of
from .errors import ConfigError
from .gcpause import gc_paused
from .model import (
    Config,
    EndpointGroup,
    Ingress,
    IngressPath,
    ObjectRef,
    Origin,
    PathType,
    Service,
    ServiceBackend,
    ServicePort,
)
from .policy import (
    AddressSet,
    AppRoot,
    BasicAuthCheck,
    Canary,
    CanaryRule,
    CorsCheck,
    EitherAccess,
    HttpsRedirect,
    LimitCheck,
    Rewrite,
    SourceRange,
    Step,
    WwwRedirect,
    fail_closed,
    unavailable,
)
from .policy import redirect as redirect_to


@dataclass(frozen=True, slots=True)
class Endpoint:
    address: str
    port: int
    tls: bool = False  # backend-protocol: HTTPS: its own pool of TLS connections

    def __str__(self) -> str:
        if ":" in self.address:
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"


@dataclass(frozen=True, slots=True)
class Backend:
    """A Service port of one namespace, resolved to the endpoints that may serve it."""

    service: ObjectRef
    port: str
    endpoints: tuple[Endpoint, ...]
    problem: str | None = None  # why there are no endpoints, for --check and 503 logs
    tls: bool = False  # spoken to over HTTPS (backend-protocol)

    @property
    def key(self) -> str:
        return f"{self.service}:{self.port}" + (" (https)" if self.tls else "")


@dataclass(frozen=True, slots=True)
class Route:
    """What serves a request: the Ingress it came from, the backend and its policy.

    The compiler binds the policy's steps once (`policy.py`): `steps` may answer
    the request locally, in order; `canary` may take it to another backend.  A
    route whose Ingress has no such annotation has neither.
    """

    ingress: ObjectRef
    host: str | None
    path: str | None  # None: a defaultBackend
    path_type: PathType | None
    backend: Backend
    policy: IngressPolicy
    labels: tuple[str, str, str, str]  # (namespace, ingress, service, "false"): metrics
    origin: Origin | None = None  # FILE:LINE of the path (or of the Ingress)
    https_redirect: bool = False
    steps: tuple[Step, ...] = ()
    canary: Canary | None = None
    rewrite: Rewrite | None = None
    upstream_host: bytes | None = None  # upstream-vhost: the Host sent instead of the client's
    upstream_lines: bytes = b""  # extra request field lines, rendered once (CRLF-ended)
    replaced_fields: tuple[bytes, ...] = ()  # the client's fields that `upstream_lines` replace
    format_field: bool = False  # send X-Format (the client's Accept), for a default-backend


NO_ROUTE_LABELS = ("", "", "", "")  # the metric labels of a request no route took

_NO_MAIN = (
    "no main (non-canary) Ingress serves that host, path and pathType; a canary never "
    "serves alone, so it serves nothing there"
)


class _Node:
    """A Prefix-trie node: one path segment."""

    __slots__ = ("children", "route")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.route: Route | None = None


@dataclass(frozen=True, slots=True)
class VirtualHost:
    name: str | None  # "foo.com", "*.foo.com" or None for rules without a host
    exact: dict[str, Route]
    prefixes: _Node
    default: Route | None

    def match(self, path: str) -> Route | None:
        """Longest match; Exact beats Prefix (an Exact hit is never shorter)."""
        route = self.exact.get(path)
        if route is not None:
            return route
        node = self.prefixes
        best = node.route
        for segment in path.split("/")[1:]:
            found = node.children.get(segment)
            if found is None:
                break
            node = found
            if node.route is not None:
                best = node.route
        return best if best is not None else self.default

    def routes(self) -> Iterator[Route]:
        yield from self.exact.values()
        stack = [self.prefixes]
        while stack:
            node = stack.pop()
            if node.route is not None:
                yield node.route
            stack.extend(node.children[k] for k in sorted(node.children, reverse=True))


@dataclass(frozen=True, slots=True)
class RegexVirtualHost:
    """A host where an Ingress uses use-regex or rewrite-target: as ingress-nginx, every
    path of the host, from every Ingress, is a case-insensitive regex anchored at the
    start, tried longest path string first; the first that matches wins."""

    name: str | None
    locations: tuple[tuple[re.Pattern[str], Route], ...]
    default: Route | None

    def match(self, path: str) -> Route | None:
        for pattern, route in self.locations:
            if pattern.search(path) is not None:
                return route
        return self.default

    def routes(self) -> Iterator[Route]:
        seen: set[int] = set()  # by identity: a Prefix path is two locations of one route
        for _, route in self.locations:
            if id(route) not in seen:
                seen.add(id(route))
                yield route


@dataclass(frozen=True, slots=True)
class TLSHost:
    host: str
    secret: ObjectRef
    ingress: ObjectRef


AnyHost = VirtualHost | RegexVirtualHost


@dataclass(frozen=True, slots=True)
class RouteTable:
    hosts: dict[str, AnyHost] = field(default_factory=dict)
    wildcards: dict[str, AnyHost] = field(default_factory=dict)  # "foo.com" for *.foo.com
    no_host: AnyHost | None = None
    catch_all: Route | None = None
    tls_hosts: tuple[TLSHost, ...] = ()
    ingresses: tuple[ObjectRef, ...] = ()  # the Ingresses served (after class filtering)
    limit_zones: frozenset[tuple[str, str]] = frozenset()  # what the server's store keeps
    warnings: tuple[str, ...] = ()

    def match(self, host: str, path: str) -> Route | None:
        """Route for a lower-cased host without port and a normalised path; None → 404."""
        vhost = self.hosts.get(host)
        if vhost is None:
            dot = host.find(".")
            if dot > 0:
                vhost = self.wildcards.get(host[dot + 1 :])
            if vhost is None:
                vhost = self.no_host
        if vhost is None:
            return self.catch_all
        route = vhost.match(path)
        return route if route is not None else self.catch_all

    def virtual_hosts(self) -> Iterator[AnyHost]:
        """Each virtual host once (not again under its server-alias names)."""
        yield from (v for k, v in sorted(self.hosts.items()) if v.name == k)
        yield from (v for k, v in sorted(self.wildcards.items()) if v.name == f"*.{k}")
        if self.no_host is not None:
            yield self.no_host

    def aliases(self) -> Iterator[tuple[str, str]]:
        """(alias, host) for each server-alias name."""
        for key, vhost in sorted(self.hosts.items()):
            if vhost.name != key:
                yield key, vhost.name or "*"
        for key, vhost in sorted(self.wildcards.items()):
            if vhost.name != f"*.{key}":
                yield f"*.{key}", vhost.name or "*"

    def backends(self) -> Iterator[Backend]:
        """Each distinct backend once."""
        seen: set[str] = set()
        routes = [r for v in self.virtual_hosts() for r in (*v.routes(), v.default) if r]
        if self.catch_all is not None:
            routes.append(self.catch_all)
        for route in routes:
            sides = (
                (route.backend,) if route.canary is None else (route.backend, route.canary.backend)
            )
            for backend in sides:
                if backend.key not in seen:
                    seen.add(backend.key)
                    yield backend


_UNRESERVED: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
)


def normalize_path(path: str) -> str:
    """The path as routing sees it (query removed, like nginx's ``$uri``).

    Percent-encoded unreserved characters are decoded, dot segments removed and
    repeated slashes merged, so ``/%61dmin`` or ``/x/../admin`` cannot reach a
    different route than ``/admin``.  ``%2F`` stays encoded: it is not a
    separator.  Paths without ``%``, ``/.`` or ``//`` are returned as they are.
    """
    path = path.partition("?")[0]
    if "%" not in path and "/." not in path and "//" not in path:
        return path
    return _remove_dot_segments(_decode_unreserved(path))


def _decode_unreserved(path: str) -> str:
    def decode(match: re.Match[str]) -> str:
        byte = int(match.group(0)[1:], 16)
        return chr(byte) if byte in _UNRESERVED else match.group(0).upper()

    return re.sub(r"%[0-9A-Fa-f]{2}", decode, path)


def _remove_dot_segments(path: str) -> str:
    output: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments[1:], start=1):
        last = index == len(segments) - 1
        if segment == "..":
            if output:
                output.pop()
            if last:
                output.append("")
        elif segment == ".":
            if last:
                output.append("")
        elif segment or last:
            output.append(segment)
    return "/" + "/".join(output)


# --- compilation -------------------------------------------------------------


def _age_key(ingress: Ingress) -> tuple[bool, float, ObjectRef]:
    """SPEC §3 tie-break: older creationTimestamp first (none = newest), then namespace/name.

    Compared as instants, not as text: ``01:00+02:00`` is older than ``00:00Z``.
    """
    created = ingress.created
    if created is None:
        return (True, 0.0, ingress.ref)
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)  # no offset: UTC, as the API server writes it
    return (False, created.timestamp(), ingress.ref)


def select_ingresses(config: Config, ingress_class: str | None) -> list[Ingress]:
    """The Ingresses this instance serves, oldest first (the tie-break order)."""
    if ingress_class is None:
        chosen = list(config.ingresses)
    else:
        class_is_default = any(
            c.name == ingress_class and c.is_default for c in config.ingress_classes
        )
        chosen = [
            i
            for i in config.ingresses
            if i.class_name == ingress_class or (i.class_name is None and class_is_default)
        ]
    return sorted(chosen, key=_age_key)


def compile_routes(config: Config, *, ingress_class: str | None = None) -> RouteTable:
    """Build the whole table in one call; it is never modified afterwards."""
    with gc_paused():
        return _Compiler(config).compile(select_ingresses(config, ingress_class))


class _VHostBuilder:
    def __init__(self, name: str | None) -> None:
        self.name = name
        self.exact: dict[str, Route] = {}
        self.prefixes = _Node()
        self.default: Route | None = None

    def build(self, problems: list[str], warnings: list[str]) -> AnyHost:
        """The host as a table: segment trie, or ingress-nginx's regex list when any of
        its paths is a regex location (a path regex Python cannot compile: `problems`)."""
        plain = VirtualHost(self.name, self.exact, self.prefixes, self.default)
        routes = list(plain.routes())
        regex = [r for r in routes if r.path is not None and r.policy.regex_location(r.path)]
        if not regex:
            return plain
        changed = [r for r in routes if r not in regex or r.path_type is PathType.EXACT]
        if changed:
            warnings.append(_regex_warning(self.name, regex[0], changed))
        locations = []
        for path, route in _regex_locations(routes):
            try:
                locations.append((re.compile("^" + path, re.IGNORECASE), route))
            except re.error as exc:
                problem = (
                    f"{route.origin}: Ingress {route.ingress}: path {route.path!r} is a regular "
                    f"expression on host {self.name or '*'} (use-regex or rewrite-target there), "
                    f"and Python's re cannot compile it: {exc}"
                )
                if problem not in problems:  # a Prefix path may be two locations
                    problems.append(problem)
        return RegexVirtualHost(self.name, tuple(locations), self.default)

    def _node(self, item: IngressPath) -> _Node:
        node = self.prefixes
        for segment in item.path.rstrip("/").split("/")[1:]:
            node = node.children.setdefault(segment, _Node())
        return node

    def place(self, item: IngressPath, route: Route) -> None:
        if item.path_type is PathType.EXACT:
            self.exact[item.path] = route
        else:
            self._node(item).route = route

    def route_at(self, item: IngressPath) -> Route | None:
        if item.path_type is PathType.EXACT:
            return self.exact.get(item.path)
        return self._node(item).route


class _Compiler:
    def __init__(self, config: Config) -> None:
        self.services = {s.ref: s for s in config.services}
        self.endpoints: dict[ObjectRef, list[EndpointGroup]] = {}
        for group in config.endpoints:
            self.endpoints.setdefault(group.service, []).append(group)
        self.backends: dict[tuple[str, ServiceBackend, bool], Backend] = {}
        self.warnings: list[str] = []
        self.problems: list[str] = []
        self.vhosts: dict[str | None, _VHostBuilder] = {}
        self.owners: dict[tuple[str | None, str, object], Ingress] = {}
        self.placed: dict[tuple[str | None, str, PathType], _VHostBuilder] = {}
        self.data_secrets = {secret.ref: secret for secret in config.data_secrets}
        self.auth_steps: dict[ObjectRef, Step] = {}
        self.limit_zones: set[tuple[str, str]] = set()
        self.tls: dict[str, TLSHost] = {}
        self.tls_owner: dict[str, Ingress] = {}

    def compile(self, ingresses: list[Ingress]) -> RouteTable:
        # A canary Ingress never creates a host, a path or a TLS host: it attaches to
        # the routes of the others once they are all placed.
        canaries: list[tuple[Ingress, CanaryRule]] = []
        mains: list[Ingress] = []
        for ingress in ingresses:
            shaping = canary_rule(ingress.annotations)
            if shaping is None:
                mains.append(ingress)
            else:
                canaries.append((ingress, shaping))
        tls_hosts = {h for i in mains for t in i.tls for h in t.hosts}
        policies = [(i, policy_of(i.annotations, i.ref.namespace)) for i in mains]
        self._host_settings(policies)
        catch_all: Route | None = None
        catch_all_owner: Ingress | None = None
        for ingress, policy in policies:
            self._add_tls(ingress)
            for rule in ingress.rules:
                redirect = _redirects(rule.host, tls_hosts, policy)
                vhost = self._vhost(rule.host)
                for item in rule.paths:
                    self._add_path(vhost, ingress, item, policy, redirect)
            if ingress.default_backend is None:
                continue
            if ingress.rules:
                self._add_host_defaults(ingress, policy, tls_hosts)
            elif catch_all is None or catch_all_owner is None:
                catch_all_owner = ingress
                catch_all = self._route(ingress, None, None, ingress.default_backend, policy, False)
            else:
                self._conflict(ingress, catch_all_owner, "the catch-all defaultBackend")
        for ingress, shaping in canaries:
            catch_all = self._attach_canary(ingress, shaping, catch_all)
        return self._table(catch_all, ingresses)

    def _host_settings(self, policies: list[tuple[Ingress, IngressPolicy]]) -> None:
        """Server-wide annotations (app-root, server-alias, from-to-www-redirect): in
        ingress-nginx they act on the whole host; the oldest Ingress that sets one wins."""
        self.app_roots: dict[str | None, bytes] = {}
        self.aliases: dict[str, tuple[Ingress, tuple[str, ...]]] = {}
        self.www: dict[str, Ingress] = {}
        for ingress, policy in policies:
            hosts = dict.fromkeys(rule.host for rule in ingress.rules) or {None: None}
            for host in hosts:
                if policy.app_root is not None:
                    self.app_roots.setdefault(host, policy.app_root.encode())
                if host is None:
                    continue
                if policy.aliases:
                    self.aliases.setdefault(host, (ingress, policy.aliases))
                if policy.from_to_www and not host.startswith("*."):
                    self.www.setdefault(host, ingress)

    def _table(self, catch_all: Route | None, ingresses: list[Ingress]) -> RouteTable:
        hosts: dict[str, AnyHost] = {}
        wildcards: dict[str, AnyHost] = {}
        for name, builder in self.vhosts.items():
            if name is not None:
                _add_host(hosts, wildcards, name, builder.build(self.problems, self.warnings))
        self._add_aliases(hosts, wildcards)
        self._add_www_redirects(hosts)
        no_host = self.vhosts.get(None)
        no_host_table = no_host.build(self.problems, self.warnings) if no_host else None
        if self.problems:
            raise ConfigError(self.problems, self.warnings)
        return RouteTable(
            hosts=hosts,
            wildcards=wildcards,
            no_host=no_host_table,
            catch_all=catch_all,
            tls_hosts=tuple(self.tls[h] for h in sorted(self.tls)),
            ingresses=tuple(i.ref for i in ingresses),
            limit_zones=frozenset(self.limit_zones),
            warnings=tuple(self.warnings),
        )

    def _add_aliases(self, hosts: dict[str, AnyHost], wildcards: dict[str, AnyHost]) -> None:
        """server-alias: more names for a host, unless another Ingress serves that name."""
        for host, (ingress, aliases) in self.aliases.items():
            vhost = _lookup(hosts, wildcards, host)
            if vhost is None:
                continue
            for alias in aliases:
                if alias == host:
                    continue
                if alias in self.vhosts or _lookup(hosts, wildcards, alias) is not None:
                    self._warn(
                        ingress.origin,
                        ingress,
                        f"server-alias {alias}: that host is "
                        "served by its own rules (or is already an alias); not an alias",
                    )
                    continue
                _add_host(hosts, wildcards, alias, vhost)
                tls = self.tls.get(host)
                if tls is not None and alias not in self.tls:
                    self.tls[alias] = TLSHost(alias, tls.secret, tls.ingress)

    def _add_www_redirects(self, hosts: dict[str, AnyHost]) -> None:
        """from-to-www-redirect: the host's www./bare twin answers 308 to the host."""
        for host, ingress in self.www.items():
            twin = host[4:] if host.startswith("www.") else f"www.{host}"
            if twin in hosts:
                self._warn(
                    ingress.origin,
                    ingress,
                    f"from-to-www-redirect: {twin} is served "
                    f"by its own rules (or is an alias); it is not redirected to {host}",
                )
                continue
            served = hosts[host]
            route = next(served.routes(), served.default)
            if route is None:
                continue
            redirect = replace(
                route,
                host=twin,
                path=None,
                path_type=None,
                canary=None,
                steps=(WwwRedirect(host.encode()),),
            )
            hosts[twin] = VirtualHost(twin, {}, _Node(), redirect)

    def _vhost(self, host: str | None) -> _VHostBuilder:
        vhost = self.vhosts.get(host)
        if vhost is None:
            vhost = self.vhosts[host] = _VHostBuilder(host)
        return vhost

    def _add_path(
        self,
        vhost: _VHostBuilder,
        ingress: Ingress,
        item: IngressPath,
        policy: IngressPolicy,
        redirect: bool,
    ) -> None:
        exact = item.path_type is PathType.EXACT
        trimmed = item.path if exact else item.path.rstrip("/")
        # Prefix and ImplementationSpecific share the trie, so they collide like duplicates.
        key = (vhost.name, trimmed, exact)
        owner = self.owners.get(key)
        if owner is not None:
            what = f"host {vhost.name or '*'} path {item.path} ({item.path_type.value})"
            self._conflict(ingress, owner, what)
            return
        self.owners[key] = ingress
        self.placed[(vhost.name, item.path, item.path_type)] = vhost
        vhost.place(item, self._route(ingress, vhost.name, item, item.backend, policy, redirect))

    def _add_host_defaults(
        self, ingress: Ingress, policy: IngressPolicy, tls_hosts: set[str]
    ) -> None:
        assert ingress.default_backend is not None
        for host in dict.fromkeys(rule.host for rule in ingress.rules):
            vhost = self._vhost(host)
            key = (host, "", "default")
            owner = self.owners.get(key)
            if owner is not None:
                self._conflict(ingress, owner, f"the defaultBackend of host {host or '*'}")
                continue
            self.owners[key] = ingress
            redirect = _redirects(host, tls_hosts, policy)
            vhost.default = self._route(
                ingress, host, None, ingress.default_backend, policy, redirect
            )

    def _add_tls(self, ingress: Ingress) -> None:
        for tls in ingress.tls:
            if tls.secret_name is None:
                continue
            secret = ObjectRef(ingress.ref.namespace, tls.secret_name)
            for host in tls.hosts:
                existing = self.tls.get(host)
                if existing is None:
                    self.tls[host] = TLSHost(host, secret, ingress.ref)
                    self.tls_owner[host] = ingress
                elif existing.secret != secret:
                    self._conflict(ingress, self.tls_owner[host], f"the TLS secret of host {host}")

    # --- access ---------------------------------------------------------------------

    def _access(self, ingress: Ingress, policy: IngressPolicy) -> list[Step]:
        """nginx's access phase, after the redirects: the source ranges, then the
        credentials; with satisfy: any, either one (never when the auth Secret is unusable:
        that stays a 503 for everyone)."""
        ranges = None
        if policy.allow or policy.deny:
            ranges = SourceRange(AddressSet.of(policy.deny), AddressSet.of(policy.allow))
        auth = self._basic_auth(ingress, policy.basic_auth) if policy.basic_auth else None
        if policy.satisfy_any and ranges is not None and isinstance(auth, BasicAuthCheck):
            return [EitherAccess(ranges, auth)]
        return [step for step in (ranges, auth) if step is not None]

    def _basic_auth(self, ingress: Ingress, spec: BasicAuth) -> Step:
        """One check per Ingress (its routes share the remembered credentials); a Secret
        that cannot be used is a 503 for the Ingress, never an open route."""
        step = self.auth_steps.get(ingress.ref)
        if step is None:
            step = self.auth_steps[ingress.ref] = self._make_basic_auth(ingress, spec)
        return step

    def _make_basic_auth(self, ingress: Ingress, spec: BasicAuth) -> Step:
        ref = spec.secret
        problem = None
        secret = self.data_secrets.get(ref)
        if not ref.name:
            problem = "auth-type: basic without auth-secret"
        elif ref.namespace != ingress.ref.namespace:
            problem = f"auth-secret {ref} is in another namespace: refused, as ingress-nginx does"
        elif secret is None:
            problem = f"auth-secret {ref} not found"
        if problem is not None or secret is None:
            return self._unavailable(ingress, problem or "")
        data = dict(secret.data)
        if spec.secret_type == "auth-map":
            users = htpasswd.users_of_map(secret.data)
        elif "auth" not in data:
            return self._unavailable(ingress, f"auth-secret {ref} has no key auth")
        else:
            users = htpasswd.users_of_file(data["auth"].decode("utf-8", "replace"))
        unknown = sorted(
            user for user, hashed in users.items() if not htpasswd.is_known_format(hashed)
        )
        if unknown:
            self._warn(
                ingress.origin,
                ingress,
                f"auth-secret {ref}: the password hash of "
                f"{', '.join(unknown)} has a format nginx does not read; they cannot log in",
            )
        return BasicAuthCheck(users, spec.realm)

    def _limits(self, ingress: Ingress, limits: Limits) -> LimitCheck:
        """Shared by every path of the Ingress (its zones are per Ingress, as ingress-nginx)."""
        step = LimitCheck(str(ingress.ref), limits.rps, limits.rpm, limits.burst_multiplier,
                          limits.connections, AddressSet.of(limits.exempt))  # fmt: skip
        self.limit_zones.update(step.zones())
        return step

    def _unavailable(self, ingress: Ingress, problem: str) -> Step:
        self._warn(ingress.origin, ingress, f"{problem}; its routes answer 503 (never open)")
        return unavailable(problem)

    # --- canaries ------------------------------------------------------------------

    def _attach_canary(
        self, ingress: Ingress, rule: CanaryRule, catch_all: Route | None
    ) -> Route | None:
        """Give the main routes this canary Ingress names (same host, path, pathType) their
        canary side; returns the catch-all, with the canary of a defaultBackend."""
        for host_rule in ingress.rules:
            for item in host_rule.paths:
                what = f"host {host_rule.host or '*'} path {item.path} ({item.path_type.value})"
                vhost = self.placed.get((host_rule.host, item.path, item.path_type))
                route = vhost.route_at(item) if vhost is not None else None
                if vhost is None or route is None:
                    self._warn(item.origin, ingress, f"canary for {what}: {_NO_MAIN}")
                    continue
                canary = self._with_canary(item.origin, ingress, route, item.backend, rule, what)
                vhost.place(item, canary)
        if ingress.default_backend is None:
            return catch_all
        what = "the catch-all defaultBackend"
        if catch_all is None:
            self._warn(ingress.origin, ingress, f"canary for {what}: {_NO_MAIN}")
            return None
        return self._with_canary(
            ingress.origin, ingress, catch_all, ingress.default_backend, rule, what
        )

    def _with_canary(
        self,
        origin: Origin,
        ingress: Ingress,
        route: Route,
        ref: ServiceBackend,
        rule: CanaryRule,
        what: str,
    ) -> Route:
        if route.canary is not None:
            message = (
                f"canary for {what}: Ingress {route.canary.ingress} is already its canary "
                "(older or sorts first); this one is not used there"
            )
            self._warn(origin, ingress, message)
            return route
        # Spoken to as the main route says (backend-protocol is the location's, not the
        # canary Ingress's, in ingress-nginx).
        backend = self._backend(ingress, ref, route.backend.tls)
        if backend.key == route.backend.key:
            message = (
                f"canary for {what}: its service {backend.key} is the main route's own; "
                "not used as a canary"
            )
            self._warn(origin, ingress, message)
            return route
        labels = (ingress.ref.namespace, ingress.ref.name, backend.service.name, "true")
        return replace(route, canary=Canary(backend, ingress.ref, rule, labels))

    def _warn(self, origin: Origin, ingress: Ingress, message: str) -> None:
        self.warnings.append(f"{origin}: Ingress {ingress.ref}: {message}")

    def _conflict(self, loser: Ingress, winner: Ingress, what: str) -> None:
        self.warnings.append(
            f"{loser.origin}: Ingress {loser.ref}: {what} is also claimed by Ingress "
            f"{winner.ref} ({winner.origin}), which is older or sorts first; "
            f"Ingress {winner.ref} wins"
        )

    def _route(
        self,
        ingress: Ingress,
        host: str | None,
        item: IngressPath | None,
        backend: ServiceBackend,
        policy: IngressPolicy,
        redirect: bool,
    ) -> Route:
        resolved = self._backend(ingress, backend, policy.backend_tls)
        # In ingress-nginx's phase order: app-root is the server's rewrite phase, the
        # redirects are the location's `return`, the https redirect its rewrite_by_lua.
        steps: list[Step] = []
        if policy.closed_by:
            steps.append(fail_closed(policy.closed_by))
        app_root = self.app_roots.get(host)
        if app_root is not None:
            steps.append(AppRoot(app_root))
        if policy.cors is not None:  # the template's `if`s come before the location's return
            steps.append(_cors(policy.cors))
        if policy.redirect is not None:
            steps.append(redirect_to(policy.redirect.code, policy.redirect.url))
        if redirect:
            steps.append(HttpsRedirect())
        if policy.limits is not None:  # nginx's preaccess phase: before allow/deny and auth
            steps.append(self._limits(ingress, policy.limits))
        steps += self._access(ingress, policy)
        rewrite, lines, replaced = _rewrite(item, policy)
        fallback = self._default_backend(ingress, policy, resolved, backend)
        if fallback is not None:
            resolved, fallback_lines, fallback_names = fallback
            lines += fallback_lines
            replaced += fallback_names
        return Route(
            ingress=ingress.ref,
            host=host,
            path=item.path if item else None,
            path_type=item.path_type if item else None,
            backend=resolved,
            policy=policy,
            labels=(ingress.ref.namespace, ingress.ref.name, resolved.service.name, "false"),
            origin=item.origin if item else ingress.origin,
            https_redirect=redirect,
            steps=tuple(steps),
            rewrite=rewrite,
            upstream_host=policy.upstream_host.encode() if policy.upstream_host else None,
            upstream_lines=lines,
            replaced_fields=replaced,
            format_field=fallback is not None,
        )

    def _default_backend(
        self, ingress: Ingress, policy: IngressPolicy, resolved: Backend, ref: ServiceBackend
    ) -> tuple[Backend, bytes, tuple[bytes, ...]] | None:
        """default-backend: when the route's Service has no ready endpoint, the Service it
        names (its first port, as ingress-nginx) serves instead, told why with X-Code 503
        and the X-* fields of ingress-nginx's custom default backends."""
        name = policy.default_backend
        if name is None or resolved.endpoints:
            return None
        service = self.services.get(ObjectRef(ingress.ref.namespace, name))
        if service is None or not service.ports:
            self._warn(ingress.origin, ingress, f"default-backend {name}: no such Service "
                       "with a port; requests get 503")  # fmt: skip
            return None
        fallback = self._backend(ingress, ServiceBackend(name, port_number=service.ports[0].port))
        if not fallback.endpoints:
            return None
        self._warn(ingress.origin, ingress, f"backend {ref} has no ready endpoint: "
                   f"default-backend {fallback.key} serves its requests")  # fmt: skip
        fields = (
            (b"x-code", b"503"), (b"x-namespace", ingress.ref.namespace.encode()),
            (b"x-ingress-name", ingress.ref.name.encode()),
            (b"x-service-name", ref.service.encode()), (b"x-service-port", ref.port.encode()),
        )  # fmt: skip
        names = (*(name for name, _ in fields), b"x-format")
        return fallback, http1.fields_bytes(fields), names

    def _backend(self, ingress: Ingress, ref: ServiceBackend, tls: bool = False) -> Backend:
        key = (ingress.ref.namespace, ref, tls)
        backend = self.backends.get(key)
        if backend is None:
            backend = self._resolve(ingress.ref.namespace, ref)
            if tls:
                endpoints = tuple(replace(e, tls=True) for e in backend.endpoints)
                backend = replace(backend, endpoints=endpoints, tls=True)
            self.backends[key] = backend
            if backend.problem:
                self.warnings.append(
                    f"{ingress.origin}: Ingress {ingress.ref}: backend {ref}: "
                    f"{backend.problem}; requests get 503"
                )
        return backend

    def _resolve(self, namespace: str, ref: ServiceBackend) -> Backend:
        service_ref = ObjectRef(namespace, ref.service)
        service = self.services.get(service_ref)
        if service is None:
            return Backend(service_ref, ref.port, (), f"service {service_ref} not found")
        port = _service_port(service, ref)
        if service.external_name is not None:
            number = _external_port(port, ref)
            if number is None:
                return Backend(service_ref, ref.port, (), f"no port {ref.port} on the service")
            return Backend(service_ref, ref.port, (Endpoint(service.external_name, number),))
        if port is None:
            return Backend(service_ref, ref.port, (), f"service has no port {ref.port}")
        endpoints = _endpoints(self.endpoints.get(service_ref, []), port)
        if not endpoints:
            return Backend(service_ref, ref.port, (), "no ready endpoints")
        return Backend(service_ref, ref.port, endpoints)


def _cors(cors: Cors) -> CorsCheck:
    headers = []
    if cors.credentials:
        headers.append((b"Access-Control-Allow-Credentials", b"true"))
    headers.append((b"Access-Control-Allow-Methods", cors.methods.encode()))
    headers.append((b"Access-Control-Allow-Headers", cors.headers.encode()))
    if cors.expose:
        headers.append((b"Access-Control-Expose-Headers", cors.expose.encode()))
    headers.append((b"Access-Control-Max-Age", str(cors.max_age).encode()))
    return CorsCheck.compile(cors.origins, tuple(headers))


def _rewrite(
    item: IngressPath | None, policy: IngressPolicy
) -> tuple[Rewrite | None, bytes, tuple[bytes, ...]]:
    """rewrite-target on this path, and the X-Forwarded-Prefix line that goes with it."""
    if item is None or policy.rewrite_target is None or not policy.rewrites(item.path):
        return None, b"", ()
    try:
        rewrite = Rewrite.compile(item.path, policy.rewrite_target)
    except re.error:
        return None, b"", ()  # the host's regex table names the path (`build`)
    if policy.forwarded_prefix is None:
        return rewrite, b"", ()
    line = b"x-forwarded-prefix: " + policy.forwarded_prefix.encode() + b"\r\n"
    return rewrite, line, (b"x-forwarded-prefix",)


def _regex_locations(routes: list[Route]) -> list[tuple[str, Route]]:
    """ingress-nginx's locations of a regex host (updateServerLocations), in nginx's order.

    A Prefix path of an Ingress without regex becomes ``path/`` plus, unless an Exact
    location has that path, ``path`` itself; every other path stays as written.  The
    locations are sorted by path, then (stable) by length, both descending.
    """
    exact = {r.path for r in routes if r.path_type is PathType.EXACT}
    locations: list[tuple[str, Route]] = []
    for route in routes:
        path = route.path
        assert path is not None
        if (
            route.path_type is not PathType.PREFIX
            or path == "/"
            or route.policy.regex_location(path)
        ):
            locations.append((path, route))
            continue
        locations.append((path if path.endswith("/") else path + "/", route))
        if path not in exact:
            locations.append((path, route))
    locations.sort(key=lambda location: location[0], reverse=True)
    locations.sort(key=lambda location: len(location[0]), reverse=True)
    return locations


def _regex_warning(host: str | None, cause: Route, changed: list[Route]) -> str:
    named = ", ".join(
        f"{r.path} ({r.path_type.value if r.path_type else ''}, Ingress {r.ingress})"
        for r in changed
    )
    return (
        f"{cause.origin}: Ingress {cause.ingress}: use-regex/rewrite-target makes every path "
        f"of host {host or '*'} a case-insensitive regex anchored at the start, tried longest "
        f"first, as ingress-nginx does; these paths change meaning (a Prefix or Exact path "
        f"also matches longer paths and other letter case): {named}"
    )


def _add_host(
    hosts: dict[str, AnyHost], wildcards: dict[str, AnyHost], name: str, vhost: AnyHost
) -> None:
    if name.startswith("*."):
        wildcards[name[2:]] = vhost
    else:
        hosts[name] = vhost


def _lookup(hosts: dict[str, AnyHost], wildcards: dict[str, AnyHost], name: str) -> AnyHost | None:
    return wildcards.get(name[2:]) if name.startswith("*.") else hosts.get(name)


def _redirects(host: str | None, tls_hosts: set[str], policy: IngressPolicy) -> bool:
    if policy.force_ssl_redirect:
        return True
    return policy.ssl_redirect and host is not None and host in tls_hosts


def _service_port(service: Service, ref: ServiceBackend) -> ServicePort | None:
    for port in service.ports:
        if ref.port_number is not None and port.port == ref.port_number:
            return port
        if ref.port_name is not None and port.name == ref.port_name:
            return port
    return None


def _external_port(port: ServicePort | None, ref: ServiceBackend) -> int | None:
    if port is None:
        return ref.port_number
    return port.target_port if isinstance(port.target_port, int) else port.port


def _endpoints(groups: list[EndpointGroup], port: ServicePort) -> tuple[Endpoint, ...]:
    """kube-proxy's choice: ready endpoints; if none is ready, the serving (terminating) ones."""
    ready: dict[Endpoint, None] = {}
    serving: dict[Endpoint, None] = {}
    for group in groups:
        number = _endpoint_port(group, port)
        if number is None:
            continue
        for address in group.addresses:
            endpoint = Endpoint(address.ip, number)
            if address.ready:
                ready[endpoint] = None
            elif address.serving:
                serving[endpoint] = None
    return tuple(ready or serving)


def _endpoint_port(group: EndpointGroup, port: ServicePort) -> int | None:
    """The endpoint port named like the Service port; the only one if unnamed; else targetPort."""
    if port.name is not None:
        for candidate in group.ports:
            if candidate.name == port.name:
                return candidate.port
    elif len(group.ports) == 1:
        return group.ports[0].port
    # Kubernetes defaults targetPort to the Service port.
    target = port.port if port.target_port is None else port.target_port
    return target if isinstance(target, int) else None
