"""The one config loader: YAML files merged in order, validated by the JSON schema
in workflow/schemas/ (the same file Snakemake validates against), defaults filled in.

A bad config fails here, before any work, with one line naming the file and key."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Iterable

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).with_name("schemas") / "config.schema.yaml"


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file and the key."""


def load_schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def deep_merge(base: dict, override: dict) -> dict:
    """override's keys win; nested mappings merge (as Snakemake merges --configfile)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _fill_defaults(instance: dict, schema: dict) -> None:
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if isinstance(instance.get(key), dict) and sub.get("type") == "object":
            _fill_defaults(instance[key], sub)


def with_env_defaults(config: dict) -> dict:
    """config merged over its environment plug-in's defaults (sizes, caps, data policy): the schema's
    own defaults, filled after, are CarRacing's. An unknown env.name is left for the schema to name."""
    from wm.envs import ENVIRONMENTS, get_env

    env = config.get("env", {})
    name = env.get("name", "car_racing") if isinstance(env, dict) else None
    if name not in ENVIRONMENTS:
        return config
    return deep_merge(get_env(name).defaults, config)


def validate_config(config: dict, source: str = "config") -> dict:
    """Check config against the schema and return a copy with every default filled in."""
    config = with_env_defaults(config)
    schema = load_schema()
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ConfigError(f"{source}: key '{key}': {error.message}")
    filled = copy.deepcopy(config)
    _fill_defaults(filled, schema)
    check_episode_caps(filled, source)
    return filled


# Episode lengths a config sets, each at most its environment's episode cap.
EPISODE_LENGTH_KEYS = (("collect", "max_steps"), ("controller", "max_steps"), ("evaluate", "max_steps"))


def check_episode_caps(config: dict, source: str) -> None:
    from wm.envs import get_env

    env = get_env(config["env"]["name"])
    for section, key in EPISODE_LENGTH_KEYS:
        if config[section][key] > env.max_steps:
            raise ConfigError(f"{source}: key '{section}.{key}': {config[section][key]} is more than env.name "
                              f"{env.name!r} allows ({env.max_steps} steps an episode)")
    if config["env"]["id"] not in env.ids:
        raise ConfigError(f"{source}: key 'env.id': {config['env']['id']!r} is not an id of env.name "
                          f"{env.name!r} (its ids: {', '.join(env.ids)})")


def load_config(paths: Iterable[str | Path], override: str | None = None) -> dict:
    """Merge the YAML files in order (later wins), then the JSON `override` mapping, and validate."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise ConfigError("no config file given (pass --config config.yaml)")
    merged: dict[str, Any] = {}
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a config must be a mapping of keys, got {type(data).__name__}")
        merged = deep_merge(merged, data)
    sources = [str(p) for p in paths]
    if override:
        try:
            extra = json.loads(override)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--override: not valid JSON ({exc})") from None
        if not isinstance(extra, dict):
            raise ConfigError("--override: must be a JSON mapping of keys")
        merged = deep_merge(merged, extra)
        sources.append("--override")
    return validate_config(merged, source=" + ".join(sources))
