"""Plugin discovery, validation and ordering.

Plugins come from the ``tgstats.plugins`` entry-point group (name = plugin id,
value = a ``Plugin`` subclass); tests may add classes directly. The host:

1. discovers every entry point and applies ``PLUGINS_ENABLED`` / ``PLUGINS_DISABLED``;
2. imports and validates each (a ``Plugin`` subclass, a compatible ``api_version``);
3. orders them so a plugin comes after whatever it ``requires`` (plugin ids or
   service keys other plugins ``provide``), then by ``priority`` and id;
4. builds each with its ``PluginContext``.

A failure names the plugin, its distribution and version, and stops startup
(``PluginLoadError``) unless the plugin is optional, in which case it is
logged, counted and skipped. ``/health/plugins`` shows every record.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal

from tgstats.plugin_api import (
    API_VERSION_MAJOR,
    BotCommand,
    HealthCheck,
    JobKind,
    Plugin,
    PluginContext,
    ServiceRegistry,
)
from tgstats.settings import Settings

__all__ = [
    "CORE_SERVICES",
    "ENTRY_POINT_GROUP",
    "PluginHost",
    "PluginLoadError",
    "PluginRecord",
    "load_plugins",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "tgstats.plugins"

#: Services the core registers before any plugin starts; a plugin may require these.
CORE_SERVICES = frozenset(
    {
        "settings",
        "metrics",
        "meter",
        "session_factory",
        "read_session_factory",
        "events",
        "database",
        "commands",
        "telemetry",
        "jobs",
    }
)


class PluginLoadError(RuntimeError):
    """A plugin could not be loaded; the message names it, its distribution and version."""


#: Where a discovered plugin is: ``discovered``, then ``loaded`` (or ``disabled`` by
#: settings, ``failed``, or ``skipped`` when an optional plugin failed to load), then
#: ``running`` inside the app's lifespan and ``stopped`` after it.
PluginState = Literal["discovered", "loaded", "disabled", "failed", "skipped", "running", "stopped"]


@dataclass
class PluginRecord:
    """What the host knows about one discovered plugin (shown at ``/health/plugins``)."""

    id: str
    source: str  # entry point value, or "builtin-test" for classes passed directly
    distribution: str | None = None
    dist_version: str | None = None
    version: str | None = None
    state: PluginState = "discovered"
    error: str | None = None
    optional: bool = False
    instance: Plugin | None = field(default=None, repr=False)

    def describe(self) -> dict[str, Any]:
        cls = type(self.instance) if self.instance is not None else None
        return {
            "id": self.id,
            "version": self.version,
            "distribution": self.distribution,
            "distribution_version": self.dist_version,
            "state": self.state,
            "error": self.error,
            "optional": self.optional,
            "requires": list(cls.requires) if cls else [],
            "provides": list(cls.provides) if cls else [],
        }

    def culprit(self) -> str:
        dist = (
            f"{self.distribution} {self.dist_version}" if self.distribution else "no distribution"
        )
        return f"plugin {self.id!r} ({dist}, from {self.source})"


@dataclass
class PluginHost:
    records: list[PluginRecord]
    services: ServiceRegistry

    @property
    def plugins(self) -> list[Plugin]:
        """Loaded plugins in start order."""
        return [
            r.instance
            for r in self.records
            if r.instance is not None and r.state in {"loaded", "running"}
        ]

    def record_for(self, plugin: Plugin) -> PluginRecord:
        return next(r for r in self.records if r.instance is plugin)

    def commands(self) -> list[BotCommand]:
        """Every bot command of every loaded plugin; a duplicate name is a load error."""
        seen: dict[str, str] = {}
        result: list[BotCommand] = []
        for plugin in self.plugins:
            record = self.record_for(plugin)
            for command in plugin.commands():
                if command.name in seen:
                    raise PluginLoadError(
                        f"{record.culprit()}: command /{command.name} is already answered by "
                        f"plugin {seen[command.name]!r}"
                    )
                seen[command.name] = record.id
                result.append(command)
        return result

    def job_kinds(self) -> list[JobKind]:
        """Every job kind of every loaded plugin; a duplicate name is a load error."""
        seen: dict[str, str] = {}
        result: list[JobKind] = []
        for plugin in self.plugins:
            record = self.record_for(plugin)
            for kind in plugin.job_kinds():
                if kind.name in seen:
                    raise PluginLoadError(
                        f"{record.culprit()}: job kind {kind.name!r} is already declared by "
                        f"plugin {seen[kind.name]!r}"
                    )
                seen[kind.name] = record.id
                result.append(kind)
        return result

    async def health_checks(self) -> list[HealthCheck]:
        checks: list[HealthCheck] = []
        for plugin in self.plugins:
            record = self.record_for(plugin)
            try:
                check = await plugin.health()
            except Exception as exc:
                log.exception("health hook of %s failed", record.culprit())
                check = HealthCheck(name=f"plugin:{record.id}", ok=False, detail=type(exc).__name__)
            if check is not None:
                checks.append(check)
        return checks

    def describe(self) -> list[dict[str, Any]]:
        return [r.describe() for r in self.records]


def _distribution_of(ep: EntryPoint) -> tuple[str | None, str | None]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


def _discover(
    extra: Mapping[str, type[Plugin]] | None,
) -> list[tuple[str, str, EntryPoint | type[Plugin]]]:
    found: dict[str, tuple[str, str, EntryPoint | type[Plugin]]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found:
            log.warning("plugin id %r registered twice; using %s", ep.name, found[ep.name][1])
            continue
        found[ep.name] = (ep.name, ep.value, ep)
    for plugin_id, cls in (extra or {}).items():
        found[plugin_id] = (plugin_id, f"{cls.__module__}:{cls.__qualname__}", cls)
    return list(found.values())


def _order(records: list[PluginRecord]) -> list[PluginRecord]:
    """Topological order by requires/provides, then priority and id. Raises on cycles."""
    by_id = {r.id: r for r in records}
    providers: dict[str, set[str]] = {}
    for record in records:
        assert record.instance is not None
        providers.setdefault(record.id, set()).add(record.id)
        for key in type(record.instance).provides:
            providers.setdefault(key, set()).add(record.id)
    deps: dict[str, set[str]] = {}
    for record in records:
        assert record.instance is not None
        needed: set[str] = set()
        for req in type(record.instance).requires:
            if req in providers:
                needed |= providers[req] - {record.id}
            elif req not in CORE_SERVICES:
                raise PluginLoadError(
                    f"{record.culprit()} requires {req!r}, which no loaded plugin provides"
                )
        deps[record.id] = needed
    ordered: list[PluginRecord] = []
    done: set[str] = set()
    remaining = dict(deps)
    while remaining:
        ready = [pid for pid, need in remaining.items() if need <= done]
        if not ready:
            cycle = ", ".join(sorted(remaining))
            raise PluginLoadError(f"plugins {cycle} require each other in a cycle")
        ready.sort(key=lambda pid: (getattr(by_id[pid].instance, "priority", 100), pid))
        chosen = ready[0]
        ordered.append(by_id[chosen])
        done.add(chosen)
        del remaining[chosen]
    return ordered


def load_plugins(
    settings: Settings,
    services: ServiceRegistry,
    *,
    extra: Mapping[str, type[Plugin]] | None = None,
    metrics: Any = None,
) -> PluginHost:
    """Discover, validate, build and order the plugins the settings allow."""
    enabled = set(settings.plugins.enabled)
    disabled = set(settings.plugins.disabled)
    optional_ids = set(settings.plugins.optional)
    records: list[PluginRecord] = []
    loaded: list[PluginRecord] = []
    for plugin_id, source, target in _discover(extra):
        dist, dist_version = (None, None) if isinstance(target, type) else _distribution_of(target)
        record = PluginRecord(plugin_id, source, dist, dist_version)
        records.append(record)
        if plugin_id in disabled or (enabled and plugin_id not in enabled):
            record.state = "disabled"
            continue
        try:
            cls = target if isinstance(target, type) else target.load()
            if not (isinstance(cls, type) and issubclass(cls, Plugin)):
                raise TypeError(f"{source} is not a tgstats.plugin_api.Plugin subclass")
            record.optional = cls.optional or plugin_id in optional_ids
            if cls.api_version != API_VERSION_MAJOR:
                raise TypeError(
                    f"written for plugin API {cls.api_version}.x; this tgstats provides "
                    f"{API_VERSION_MAJOR}.x (needs a plugin release for API {API_VERSION_MAJOR})"
                )
            if not cls.id:
                cls.id = plugin_id
            context = PluginContext(plugin_id, settings, services, dist, dist_version)
            record.instance = cls(context=context)
            record.version = cls.version or dist_version
            record.state = "loaded"
            loaded.append(record)
        except Exception as exc:
            record.state = "failed"
            record.error = f"{type(exc).__name__}: {exc}"[:500]
            if record.optional or plugin_id in optional_ids:
                record.state = "skipped"
                log.warning("skipping optional %s: %s", record.culprit(), record.error)
                if metrics is not None:
                    metrics.error("plugin_load")
                continue
            raise PluginLoadError(f"{record.culprit()} failed to load: {record.error}") from exc
    ordered = _order(loaded)
    others = [r for r in records if r not in loaded]
    return PluginHost(records=ordered + others, services=services)
