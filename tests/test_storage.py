"""Zarr shards: deterministic, atomic, validated; damage is caught, never read back as zeros."""

import json
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
from wm.envs.car_racing import preprocess
from wm.cli import main
from wm.rollouts.readers import frame_batches, open_stores, sample_frames, sequence_batches, sequence_windows
from wm.rollouts.storage import LAYOUTS, StoreError, check_store, episode_checksum, open_store, write_store


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
    from wm.envs.car_racing import make_env

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
    assert len(problems) == 1
    assert "truncated.zarr: array 'frames' of episode 0: does not match its checksum" in problems[0]
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


def test_the_writer_refuses_what_every_reader_would_and_writes_nothing(shard, tmp_path):
    """NaN or infinity inside an episode (a V that diverged, say), lengths outside the arrays, episode
    counts that disagree: one line naming the store, the array and the episode, and no store on disk.
    NaN in the padding past an episode's length is never read and is written as given."""
    source = open_store(shard, "rollouts")
    good = {name: values for name, values in arrays(shard).items() if name in LAYOUTS["rollouts"]}
    meta = {key: source.attrs[key] for key in ("env_id", "seeds", "policy", "versions", "max_steps")}
    out = tmp_path / "refused.zarr"

    def refused(arrays_, lengths):
        with pytest.raises(StoreError) as error:
            write_store(out, "rollouts", arrays_, lengths, meta)
        assert not out.exists() and "\n" not in str(error.value)
        return str(error.value)

    rewards = good["rewards"].copy()
    rewards[1, 7] = np.nan
    line = refused({**good, "rewards": rewards}, source.lengths)
    assert line == (f"{out}: array 'rewards' of episode 1: holds NaN or infinity (first at step 7); not written: "
                    "its writer computed them")
    actions = good["actions"].copy()
    actions[0, 3, 2] = -np.inf
    assert "array 'actions' of episode 0: holds NaN or infinity (first at step 3)" in refused(
        {**good, "actions": actions}, source.lengths)
    too_long = source.lengths.copy()
    too_long[1] = good["rewards"].shape[1] + 1
    assert f"array 'lengths': episode 1 has length {too_long[1]}, outside 1..{good['rewards'].shape[1]}" in refused(
        good, too_long)
    assert "array 'frames': holds 1 episodes where lengths lists 2" in refused(
        {**good, "frames": good["frames"][:1]}, source.lengths)

    shorter = source.lengths.copy()
    shorter[0] -= 10
    padded = good["rewards"].copy()
    padded[0, shorter[0]:] = np.nan  # past the episode's end: no reader sees it
    write_store(out, "rollouts", {**good, "rewards": padded}, shorter, meta)
    assert check_store(out, "rollouts") == []


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


# --- Damage of every kind to every array: one line naming the store, the array and the episode ------------

Z_DIM = 4
FLOAT_ARRAYS = [("rollouts", "actions"), ("rollouts", "rewards"), ("latents", "mu"), ("latents", "logvar"),
                ("latents", "actions")]


@pytest.fixture(scope="module")
def good(shard, tmp_path_factory):
    """A rollouts and a latents store written by write_store from the fixture shard, each with a second
    copy; `terminated` is set at each episode's last step so that every array has chunks on disk."""
    root = tmp_path_factory.mktemp("good")
    source = open_store(shard, "rollouts")
    rollouts = {name: values for name, values in arrays(shard).items() if name in LAYOUTS["rollouts"]}
    for e, length in enumerate(source.lengths):
        rollouts["terminated"][e, length - 1] = True
    meta = {key: source.attrs[key] for key in ("env_id", "seeds", "policy", "versions", "max_steps")}
    write_store(root / "rollouts.zarr", "rollouts", rollouts, source.lengths, meta)
    noise = np.random.default_rng(0).normal(size=(2, *rollouts["rewards"].shape, Z_DIM)).astype(np.float32)
    pad = (np.arange(rollouts["rewards"].shape[1]) < source.lengths[:, None])[..., None]
    latents = {"mu": noise[0] * pad, "logvar": noise[1] * pad,
               **{name: rollouts[name] for name in ("actions", "rewards", "terminated")}}
    write_store(root / "latents.zarr", "latents", latents, source.lengths, {
        "source": str(shard), "vae": {"path": "model.pt", "sha256": "0" * 16}, "z_dim": Z_DIM,
        "seeds": source.attrs["seeds"]})
    stores = {}
    for kind in ("rollouts", "latents"):
        shutil.copytree(root / f"{kind}.zarr", root / f"{kind}-2.zarr")
        stores[kind] = (root / f"{kind}.zarr", root / f"{kind}-2.zarr")
        assert check_store(stores[kind][0], kind) == [] and check_store(stores[kind][1], kind) == []
    return stores


def chunk_of(store, name, episode=1):
    """The first chunk file of `episode` (lengths: its only chunk): <store>/<array>/c/<episode>/0/..."""
    folder = store / name / "c" / ("0" if name == "lengths" else str(episode))
    return folder if folder.is_file() else min(p for p in folder.rglob("*") if p.is_file())


def edit_metadata(store, name, edit):
    path = store / name / "zarr.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta, indent=2))


def overwrite(chunk, offset, count=50):
    data = bytearray(chunk.read_bytes())
    data[offset : offset + count] = np.random.default_rng(1).bytes(count)
    chunk.write_bytes(bytes(data))


def shorten(meta, name):
    """One step fewer (a truncated array); for lengths, one episode fewer."""
    meta["shape"][0 if name == "lengths" else 1] -= 1


WIDER = {"uint8": "int16", "float32": "float64", "bool": "uint8", "int32": "int64"}
DAMAGE = {  # name -> (what it does to array `name` of `store`, whether the problem is in an episode's data)
    "header-bytes": (lambda store, name: overwrite(chunk_of(store, name), 0), True),  # the blosc -1
    "middle-bytes": (lambda store, name: overwrite(chunk_of(store, name), chunk_of(store, name).stat().st_size // 3),
                     True),
    "truncated-chunk": (lambda store, name: chunk_of(store, name).write_bytes(
        chunk_of(store, name).read_bytes()[: chunk_of(store, name).stat().st_size // 2]), True),
    "deleted-chunk": (lambda store, name: chunk_of(store, name).unlink(), True),
    "dtype": (lambda store, name: edit_metadata(store, name, lambda m: m.update(data_type=WIDER[m["data_type"]])),
              False),
    "shorter-shape": (lambda store, name: edit_metadata(store, name, lambda m: shorten(m, name)), False),
    "chunk-shape": (lambda store, name: edit_metadata(
        store, name, lambda m: m["chunk_grid"]["configuration"]["chunk_shape"].__setitem__(-1, 1)), False),
    "broken-json": (lambda store, name: (store / name / "zarr.json").write_text(
        (store / name / "zarr.json").read_text()[:-20]), False),
}
CASES = [(kind, name) for kind in ("rollouts", "latents") for name in [*LAYOUTS[kind], "lengths"]
         if kind == "rollouts" or name in ("mu", "logvar")]


def damaged_copy(good, tmp_path, kind, name, damage):
    store = tmp_path / f"{kind}-{name}-{damage}.zarr"
    shutil.copytree(good[kind][0], store)
    DAMAGE[damage][0](store, name)
    return store


def assert_one_line_naming(problems, store, name, episode):
    assert len(problems) == 1, problems
    assert "\n" not in problems[0] and problems[0].startswith(f"{store}: array '{name}'"), problems[0]
    if episode is not None:
        assert f"array '{name}' of episode {episode}:" in problems[0], problems[0]
    assert problems[0].endswith("re-run the job that wrote this store"), problems[0]


def assert_data_check_reports(capsys, good, kind, store):
    """`wm data check good bad good2`: both good ones ok, the bad one BAD, exit 1 (in-process: the same main)."""
    first, second = good[kind]
    assert main(["data", "check", "--kind", kind, str(first), str(store), str(second)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"ok  {first}" and out[1].startswith(f"BAD {store}: ") and out[2] == f"ok  {second}", out
    assert out[3] == "2 of 3 stores ok" and len(out) == 4, out


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("kind, name", CASES, ids=[f"{k}-{n}" for k, n in CASES])
def test_damage_is_one_line_naming_store_array_and_episode(good, tmp_path, capsys, kind, name, damage):
    store = damaged_copy(good, tmp_path, kind, name, damage)
    problems = check_store(store, kind)
    in_data = DAMAGE[damage][1] and name != "lengths"
    assert_one_line_naming(problems, store, name, 1 if in_data else None)
    if not in_data:  # metadata and lengths: refused when the store is opened, before any training
        with pytest.raises(StoreError) as refused:
            open_store(store, kind)
        assert str(refused.value) == problems[0]
    assert_data_check_reports(capsys, good, kind, store)


@pytest.mark.parametrize("matching_checksum", [False, True], ids=["stale-checksum", "matching-checksum"])
@pytest.mark.parametrize("kind, name", FLOAT_ARRAYS, ids=[f"{k}-{n}" for k, n in FLOAT_ARRAYS])
def test_non_finite_values_are_reported_and_refused(good, tmp_path, capsys, kind, name, matching_checksum):
    store = tmp_path / f"{kind}-{name}-nan.zarr"
    shutil.copytree(good[kind][0], store)
    array = zarr.open_array(str(store / name), mode="r+")
    values = array[1]
    values[5] = np.inf if name == "rewards" else np.nan
    array[1] = values
    if matching_checksum:  # a NaN the writer itself put there: the CRC agrees, the value is still refused
        group = zarr.open_group(str(store), mode="r+")
        checksums = group.attrs["checksums"]
        checksums[name][1] = episode_checksum(values[: open_store(store, kind).lengths[1]])
        group.attrs["checksums"] = checksums
    problems = check_store(store, kind)
    assert_one_line_naming(problems, store, name, 1)
    expected = "holds NaN or infinity (first at step 5)" if matching_checksum else "does not match its checksum"
    assert expected in problems[0], problems[0]
    opened = open_store(store, kind)
    with pytest.raises(StoreError) as refused:  # every reader goes through episode(): training never sees it
        opened.episode(1)
    assert str(refused.value) == problems[0]
    if kind == "latents":
        stores = open_stores([store], kind)
        with pytest.raises(StoreError) as refused:
            list(sequence_batches(stores, sequence_windows(stores, 20), 20, 4, np.random.default_rng(0)))
        assert str(refused.value) == problems[0]
    assert_data_check_reports(capsys, good, kind, store)


@pytest.mark.parametrize("damage", ["header-bytes", "truncated-chunk"])
def test_reader_threads_raise_the_same_one_line_error(good, tmp_path, damage):
    store = damaged_copy(good, tmp_path, "rollouts", "frames", damage)
    expected = check_store(store, "rollouts")[0]
    assert "a chunk cannot be decoded (RuntimeError: error during blosc decompression" in expected
    for buffer_episodes in (1, 2):  # damage read by the first buffer, or by the prefetch of the next
        with pytest.raises(StoreError) as raised:
            list(frame_batches(open_stores([store], "rollouts"), 8, buffer_episodes, np.random.default_rng(0),
                               read_threads=2))
        assert type(raised.value) is StoreError and str(raised.value) == expected
    with pytest.raises(StoreError) as raised:
        sample_frames(open_stores([store], "rollouts"), 10**6, np.random.default_rng(0))
    assert str(raised.value) == expected


def test_group_metadata_and_attributes_are_checked_at_open(good, tmp_path):
    source = good["rollouts"][0]

    def copy(label, edit):
        store = tmp_path / f"{label}.zarr"
        shutil.copytree(source, store)
        meta = json.loads((store / "zarr.json").read_text())
        edit(meta)
        (store / "zarr.json").write_text(json.dumps(meta))
        return store

    broken = tmp_path / "broken-group.zarr"
    shutil.copytree(source, broken)
    (broken / "zarr.json").write_text((broken / "zarr.json").read_text()[:100])
    cases = {
        broken: "not a readable Zarr store: its zarr.json is missing or damaged (JSONDecodeError",
        copy("no-checksums", lambda m: m["attributes"].pop("checksums")): "metadata lacks checksums",
        copy("short-checksums", lambda m: m["attributes"]["checksums"]["rewards"].pop()):
            "metadata 'checksums' of array 'rewards' holds 1 entries, expected 2 CRC32 values",
        copy("unlisted-checksums", lambda m: m["attributes"]["checksums"].pop("terminated")):
            "metadata 'checksums' lists ['actions', 'frames', 'rewards'], expected",
        copy("seeds", lambda m: m["attributes"]["seeds"].pop()): "metadata 'seeds' holds 1 entries, expected 2",
    }
    for store, message in cases.items():
        problems = check_store(store, "rollouts")
        assert len(problems) == 1 and problems[0].startswith(f"{store}: {message}"), problems
    missing = tmp_path / "no-rewards.zarr"
    shutil.copytree(source, missing)
    shutil.rmtree(missing / "rewards")
    assert check_store(missing, "rollouts") == [f"{missing}: array 'rewards': is missing (no zarr.json); "
                                                "re-run the job that wrote this store"]


def test_data_check_goes_on_past_every_bad_store(good, shard, tmp_path):
    """The real `wm data check` over a folder of every damage of frames between two good stores."""
    folder = tmp_path / "damaged"
    folder.mkdir()
    bad = [damaged_copy(good, folder, "rollouts", "frames", damage) for damage in DAMAGE]
    first, second = good["rollouts"]
    result = wm("data", "check", first, folder, tmp_path / "nowhere.zarr", second, shard, check=False)
    lines = result.stdout.splitlines()
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0] == f"ok  {first}" and lines[-3:] == [f"ok  {second}", f"ok  {shard}",
                                                           f"3 of {len(bad) + 4} stores ok"], lines
    for store in bad:
        assert [line for line in lines if line.startswith(f"BAD {store}: array 'frames'")], (store, lines)
    assert f"BAD {tmp_path / 'nowhere.zarr'}: store not found" in lines


def test_training_commands_print_the_one_line_error(good, tmp_path, capsys):
    """train-vae and encode through the real CLI (subprocesses), train-mdn and dream through the same main()
    in this process, each on a damaged store: exit 2 and `wm COMMAND: error: <check_store's line>`."""
    import torch

    from wm.mdn.model import MDNRNN
    from wm.vae.model import ConvVAE

    rollouts = damaged_copy(good, tmp_path, "rollouts", "frames", "header-bytes")  # episode 1
    first = tmp_path / "first.zarr"  # dream reads episode 0
    shutil.copytree(good["rollouts"][0], first)
    overwrite(chunk_of(first, "frames", episode=0), 0)
    latents = damaged_copy(good, tmp_path, "latents", "mu", "truncated-chunk")
    vae, mdn = tmp_path / "vae.pt", tmp_path / "mdn.pt"
    torch.save({"kind": "vae", "z_dim": 32, "state_dict": ConvVAE(32).state_dict()}, vae)
    torch.save({"kind": "mdn", "z_dim": 32, "hidden": 8, "gaussians": 2,
                "state_dict": MDNRNN(32, hidden=8, gaussians=2).state_dict()}, mdn)
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    real_cli = {
        "train-vae": ["--data", rollouts, "--out", tmp_path / "v"],
        "encode": ["--vae", vae, "--shard", rollouts, "--out", tmp_path / "l.zarr"],
    }
    procs = {command: subprocess.Popen([str(BIN / "wm"), command, *tiny_args(), *map(str, args)], cwd=REPO, env=env,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for command, args in real_cli.items()}
    in_process = {
        # the fixture's latents are of a z_dim-4 V: the run says so, or train-mdn refuses them for that
        "train-mdn": (["--latents", latents, "--out", tmp_path / "m", "--override", '{"vae": {"z_dim": 4}}'],
                      latents, "latents"),
        "dream": (["--vae", vae, "--mdn", mdn, "--shard", first, "--out", tmp_path / "d.gif"], first, "rollouts"),
    }
    for command, (args, store, kind) in in_process.items():
        capsys.readouterr()
        assert main([command, *tiny_args(), *map(str, args)]) == 2
        problem = check_store(store, kind)[0]
        assert f"array '{'mu' if kind == 'latents' else 'frames'}' of episode " in problem
        assert capsys.readouterr().err.endswith(f"wm {command}: error: {problem}\n")
    problem = check_store(rollouts, "rollouts")[0]
    assert "array 'frames' of episode 1: a chunk cannot be decoded (RuntimeError: error during blosc" in problem
    for command, proc in procs.items():
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 2 and stderr.endswith(f"wm {command}: error: {problem}\n"), (command, stderr[-2000:])
        assert "Traceback" not in stderr, stderr
