"""Zarr shards: deterministic, atomic, validated; damage is caught, never read back as zeros."""

import os
import shutil
import signal
import subprocess
import time

import numpy as np
import pytest
import zarr

from conftest import BIN, REPO, TINY, tiny_args, wm
from wm.config import load_config
from wm.envs import preprocess
from wm.rollouts.readers import frame_batches, open_stores, sample_frames
from wm.rollouts.storage import StoreError, check_store, open_store


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    path = tmp_path_factory.mktemp("shards") / "shard-0000.zarr"
    wm("collect", *tiny_args(), "--shard", "0", "--out", path)
    return path


def arrays(path):
    group = zarr.open_group(str(path), mode="r")
    return {name: group[name][...] for name in group.array_keys()}


def test_shard_round_trip(shard):
    store = open_store(shard, "rollouts")
    config = load_config([REPO / "config.yaml", TINY])
    assert store.episodes == config["collect"]["episodes_per_shard"]
    episode = store.episode(0)
    assert episode["frames"].shape == (store.lengths[0], 64, 64, 3) and episode["frames"].dtype == np.uint8
    assert episode["actions"].shape == (store.lengths[0], 3)
    assert store.attrs["env_id"] == config["env"]["id"] and store.attrs["policy"]["name"] == "brownian"
    assert store.attrs["versions"]["gymnasium"] == "1.4.0" and len(store.attrs["seeds"]) == store.episodes
    assert check_store(shard, "rollouts") == []


def test_same_shard_index_gives_identical_arrays(shard, tmp_path):
    again = tmp_path / "again.zarr"
    wm("collect", *tiny_args(), "--shard", "0", "--out", again)
    first, second = arrays(shard), arrays(again)
    assert first.keys() == second.keys()
    for name in first:
        assert np.array_equal(first[name], second[name]), name
    other = tmp_path / "other.zarr"
    wm("collect", *tiny_args(), "--shard", "1", "--out", other)
    assert not np.array_equal(arrays(other)["actions"], first["actions"])


def test_frames_are_the_shared_preprocessing_of_the_env(shard):
    """Replaying the recorded actions on the recorded seed reproduces the stored frames."""
    from wm.envs import make_env

    store = open_store(shard, "rollouts")
    episode = store.episode(0)
    env = make_env()
    obs, _ = env.reset(seed=store.attrs["seeds"][0])
    for t in range(store.lengths[0]):
        assert np.array_equal(preprocess(obs), episode["frames"][t]), t
        obs, *_ = env.step(episode["actions"][t].astype(np.float32))


def test_missing_chunk_is_caught(shard, tmp_path):
    broken = tmp_path / "truncated.zarr"
    shutil.copytree(shard, broken)
    chunk = next(p for p in sorted((broken / "frames" / "c").rglob("*")) if p.is_file())
    chunk.unlink()
    problems = check_store(broken, "rollouts")
    assert len(problems) == 1 and "truncated.zarr: array 'frames' of episode 0 does not match its checksum" in problems[0]
    with pytest.raises(StoreError, match="checksum"):
        next(frame_batches(open_stores([broken], "rollouts"), 8, 4, np.random.default_rng(0)))
    result = wm("data", "check", shard, broken, check=False)
    assert result.returncode == 1
    assert f"ok  {shard}" in result.stdout and f"BAD {broken}" in result.stdout and "1 of 2 stores ok" in result.stdout


def test_corrupted_chunk_is_caught(shard, tmp_path):
    broken = tmp_path / "corrupted.zarr"
    shutil.copytree(shard, broken)
    chunk = next(p for p in sorted((broken / "actions" / "c").rglob("*")) if p.is_file())
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    problems = check_store(broken, "rollouts")
    assert len(problems) == 1 and "corrupted.zarr" in problems[0]


def test_incomplete_and_foreign_stores_are_refused(shard, tmp_path):
    partial = tmp_path / "partial.zarr"
    shutil.copytree(shard, partial)
    group = zarr.open_group(str(partial), mode="a")
    group.attrs["complete"] = False
    with pytest.raises(StoreError, match="partial.zarr: store is incomplete"):
        open_store(partial, "rollouts")
    with pytest.raises(StoreError, match="expected a 'latents' store"):
        open_store(shard, "latents")
    with pytest.raises(StoreError, match="store not found"):
        open_store(tmp_path / "missing.zarr", "rollouts")


def test_killed_collect_leaves_no_store_and_rerun_is_identical(tmp_path):
    """Kill a collect job while it writes its store: nothing that looks like a store is left,
    and a rerun writes the same arrays as an uninterrupted run."""
    longer = tmp_path / "longer.yaml"
    longer.write_text("collect: {max_steps: 400}\n")
    args = [*tiny_args(), "--config", str(longer), "--shard", "0"]
    whole = tmp_path / "whole.zarr"
    wm("collect", *args, "--out", whole)
    out = tmp_path / "killed.zarr"
    proc = subprocess.Popen([str(BIN / "wm"), "collect", *args, "--out", str(out)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and not list(tmp_path.glob(".killed.zarr.*.tmp")):
        time.sleep(0.001)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "collect finished before it could be killed mid-write"
    assert not out.exists()
    with pytest.raises(StoreError, match="store not found"):
        open_store(out, "rollouts")
    wm("collect", *args, "--out", out)
    assert not list(tmp_path.glob(".killed.zarr.*.tmp"))  # the rerun cleared the killed writer's leftovers
    first, second = arrays(whole), arrays(out)
    for name in first:
        assert np.array_equal(first[name], second[name]), name


def test_frame_batches_cover_every_frame_once(shard):
    stores = open_stores([shard], "rollouts")
    batches = list(frame_batches(stores, 7, 1, np.random.default_rng(0)))
    assert sum(len(b) for b in batches) == stores[0].frames
    assert all(len(b) == 7 for b in batches[:-1])
    sample = sample_frames(stores, 10, np.random.default_rng(0))
    assert sample.shape == (10, 64, 64, 3)


def test_data_check_names_a_missing_path(tmp_path):
    result = wm("data", "check", tmp_path / "none", check=False)
    assert result.returncode == 1 and "none: not found" in result.stdout
