"""Environments as plug-ins (wm/envs/plugin.py's EnvPlugin): config env.name picks one; each lives in
its own subpackage, imported only when a run names it (Doom's vizdoom is not needed to race cars)."""

from __future__ import annotations

import importlib

from wm.envs.plugin import EnvPlugin

# env.name -> the subpackage whose PLUGIN it is. A third environment adds one line here.
ENVIRONMENTS = {
    "car_racing": "wm.envs.car_racing",
    "doom": "wm.envs.doom",
}


def get_env(name: str) -> EnvPlugin:
    """The plug-in of env.name `name`."""
    if name not in ENVIRONMENTS:
        raise ValueError(f"env.name {name!r} is not an environment of wm (known: {', '.join(ENVIRONMENTS)})")
    return importlib.import_module(ENVIRONMENTS[name]).PLUGIN


def env_of(config: dict) -> EnvPlugin:
    """The plug-in a config's run is for."""
    return get_env(config["env"]["name"])


def env_of_id(env_id: str) -> EnvPlugin:
    """The plug-in one of whose ids is `env_id` (for records that name the id only, as shards made
    before env.name existed do)."""
    for name in ENVIRONMENTS:
        plugin = get_env(name)
        if env_id in plugin.ids:
            return plugin
    raise ValueError(f"env id {env_id!r} belongs to no environment of wm (known: {', '.join(ENVIRONMENTS)})")


__all__ = ["ENVIRONMENTS", "EnvPlugin", "env_of", "env_of_id", "get_env"]
