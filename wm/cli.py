"""The `wm` command: one subcommand per stage of the pipeline. Parsing and dispatch only."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wm import __version__
from wm.controller import VARIANTS
from wm.seeding import TRACK_SETS

STAGES = """stages, in the order of the data:
  collect            rollouts of env.name (a random data policy, or a trained agent) into one Zarr shard
  data check         validate shards (shapes, counts, checksums, metadata)
  train-vae          fit V on the frames; fails if V collapses to the mean frame
  encode             V's (mu, log sigma^2) for every frame of a shard, for M
  train-mdn          fit M (MDN-RNN) on the latent sequences
  train-controller   evolve C with CMA-ES, in the real environment or M's dream (resumes from its checkpoint)
  export-controller  a CMA-ES run's controller at its last checkpointed generation, to score it midway
  diagnose           a CMA-ES run's fitness spread across tracks and how its episodes ended
  evaluate           score the agent on held-out tracks
  dream-starts       the latents' first frames as one small store, where dreams start (to commit)
  evaluate-random    score the environment's random data policy on the same tracks (the baseline)
  dream              roll M forward from a real frame and decode it with V into a GIF
  export             V (float16), M and C as small files to commit and evaluate anywhere
"""


def _config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", action="append", required=True, metavar="YAML",
                        help="config file; repeat to merge several, later files win (as snakemake --configfile)")
    parser.add_argument("--override", metavar="JSON", help="a JSON mapping merged over the files (snakemake --config)")


def _models(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vae", type=Path, required=True, help="V checkpoint (model.pt)")
    parser.add_argument("--mdn", type=Path, required=True, help="M checkpoint (model.pt)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wm", description="World Models, on environments that are plug-ins (wm/envs/).", epilog=STAGES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"wm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("collect", help="collect one shard of random-policy episodes into a Zarr store",
                       description="Run collect.episodes_per_shard episodes of the random policy and write them "
                                   "as one Zarr store; the same --shard and config give identical arrays.")
    _config(p)
    p.add_argument("--shard", type=int, required=True, help="shard index (0-based); seeds derive from it")
    p.add_argument("--out", type=Path, required=True, help="the shard's store, e.g. results/data/shard-0000.zarr")
    for name in ("vae", "mdn", "controller"):
        p.add_argument(f"--{name}", type=Path, help=f"collect.policy agent only: the {name} checkpoint that drives")

    p = sub.add_parser("data", help="inspect collected data")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    c = data_sub.add_parser("check", help="validate stores or folders of stores; names each bad one",
                            description="Read every store in full: layout, dtypes, lengths, checksums, finite "
                                        "values, metadata. Exits 1 if any store is bad.")
    c.add_argument("paths", nargs="+", type=Path, help="stores (*.zarr) or folders of them")
    c.add_argument("--kind", choices=["rollouts", "latents"], default="rollouts")

    p = sub.add_parser("train-vae", help="train V on collected frames",
                       description="Train the ConvVAE on every frame of the shards; write model.pt, metrics.csv, "
                                   "summary.json and reconstructions.png to --out. Exits 1 if V does not beat "
                                   "the mean-frame baseline by vae.guard_max_ratio.")
    _config(p)
    p.add_argument("--data", type=Path, nargs="+", required=True, help="rollout shards")
    p.add_argument("--out", type=Path, required=True, help="output folder")

    p = sub.add_parser("encode", help="encode one shard's frames into V's posterior (mu, logvar)")
    _config(p)
    p.add_argument("--vae", type=Path, required=True, help="V checkpoint (model.pt)")
    p.add_argument("--shard", type=Path, required=True, help="rollout shard to encode")
    p.add_argument("--out", type=Path, required=True, help="latent store to write")

    p = sub.add_parser("train-mdn", help="train M (the MDN-RNN) on latent sequences",
                       description="Teacher-forced training of the MDN-RNN; z resampled from (mu, logvar) every "
                                   "batch. Writes model.pt, metrics.csv, summary.json and loss.png to --out.")
    _config(p)
    p.add_argument("--latents", type=Path, nargs="+", required=True, help="latent stores from `wm encode`")
    p.add_argument("--out", type=Path, required=True, help="output folder")

    p = sub.add_parser("train-controller", help="evolve C with CMA-ES (resumable)",
                       description="CMA-ES (pycma) over the linear controller's parameters, fitness measured in "
                                   "the real environment (or, with controller.environment: dream, inside M: "
                                   "--latents needed; held-out scores stay real). Checkpoints every generation to --out/checkpoint.pkl; "
                                   "rerunning the same command resumes, raising controller.generations extends a "
                                   "finished run, and a checkpoint saved with other settings is refused.")
    _config(p)
    p.add_argument("--variant", choices=VARIANTS, required=True, help="z_h: C sees [z, h]; z: C sees z only")
    _models(p)
    p.add_argument("--latents", type=Path, nargs="+",
                   help="controller.environment dream only: latent stores (`wm encode`) whose first frames "
                        "start the dream rollouts")
    p.add_argument("--out", type=Path, required=True, help="output folder")

    p = sub.add_parser("export-controller", help="a CMA-ES run's controller at its last checkpoint (score it midway)",
                       description="Write the CMA mean (or best, controller.eval_solution) of a stopped or running "
                                   "train-controller folder at its last checkpointed generation to --to, as the "
                                   "finished run writes controller.pt. Takes the run's own arguments: the "
                                   "checkpoint is checked against them as a resume checks it.")
    _config(p)
    p.add_argument("--variant", choices=VARIANTS, required=True, help="z_h: C sees [z, h]; z: C sees z only")
    _models(p)
    p.add_argument("--latents", type=Path, nargs="+", help="controller.environment dream only, as for the run")
    p.add_argument("--out", type=Path, required=True, help="the run's train-controller --out folder")
    p.add_argument("--to", type=Path, required=True, help="controller file to write")

    p = sub.add_parser("diagnose", help="a CMA-ES run's fitness spread across tracks and how episodes ended",
                       description="Read generations.jsonl in a train-controller folder; write diagnostics.csv and "
                                   "diagnostics.png there and print the table.")
    p.add_argument("folder", type=Path, help="a train-controller --out folder, e.g. results/controller/z_h")

    p = sub.add_parser("evaluate", help="score V + M + C on held-out tracks",
                       description="Run a named set of held-out tracks (--tracks); write returns.json, "
                                   "histogram.png and episode.gif to --out.")
    _config(p)
    _models(p)
    p.add_argument("--controller", type=Path, required=True)
    p.add_argument("--tracks", choices=list(TRACK_SETS), default="evaluation",
                   help="the held-out set: evaluation (evaluate.episodes tracks, the default) or final "
                        "(evaluate.final_episodes tracks, scored once per shipped controller)")
    p.add_argument("--dream", type=Path, nargs="+", metavar="LATENTS",
                   help="score in M's dream instead of the real environment (the dream score beside the real one), "
                        "started from these latents stores' first frames (wm dream-starts), at "
                        "controller.dream_temperature; one process")
    p.add_argument("--out", type=Path, required=True)

    p = sub.add_parser("evaluate-random", help="score the environment's random data policy on held-out tracks",
                       description="The baseline beside a trained agent: collect.policy (one of env.name's random "
                                   "data policies) on the same held-out set as `wm evaluate`, one episode at a "
                                   "time in this process; write returns.json and histogram.png to --out.")
    _config(p)
    p.add_argument("--tracks", choices=list(TRACK_SETS), default="evaluation")
    p.add_argument("--out", type=Path, required=True)

    p = sub.add_parser("dream-starts", help="the latents' first frames as one small store (where dreams start)",
                       description="Write the first frame of every episode of the latents stores as one latents "
                                   "store of one-frame episodes: what train-controller --latents needs for "
                                   "controller.environment dream, small enough to commit.")
    p.add_argument("--latents", type=Path, nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True)

    p = sub.add_parser("dream", help="M's dream from a real frame, decoded by V, beside the real frames (GIF)",
                       description="Encode a recorded frame, roll M forward on the recorded actions with its own "
                                   "sampled z (temperature tau), decode with V; write a GIF of real | dream.")
    _config(p)
    _models(p)
    p.add_argument("--shard", type=Path, required=True, help="rollout shard; its first episode is used")
    p.add_argument("--start", type=int, help="start frame (default: mdn.dream_start)")
    p.add_argument("--steps", type=int, help="steps to dream (default: mdn.dream_steps)")
    p.add_argument("--temperature", type=float,
                   help="tau (default: mdn.temperature; with --controller, controller.dream_temperature)")
    p.add_argument("--controller", type=Path,
                   help="C drives in the dream instead of the recorded actions (M needs its reward head); "
                        "starts at frame 0 unless --start, runs up to controller.dream_max_steps unless --steps")
    p.add_argument("--out", type=Path, required=True, help="GIF to write")

    p = sub.add_parser("export", help="write V (float16), M and C(s) as small files to share",
                       description="Copy the trained models into --out: vae.pt in float16, mdn.pt, "
                                   "controller_VARIANT.pt; `wm evaluate` runs on them without training.")
    _models(p)
    p.add_argument("--controller", type=Path, nargs="*", default=[], help="controller checkpoints (any number)")
    p.add_argument("--out", type=Path, required=True, help="folder to write")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from wm.config import ConfigError, load_config
    from wm.rollouts.storage import StoreError

    try:
        config = load_config(args.config, args.override) if hasattr(args, "config") else None
        return dispatch(args, config)
    except (ConfigError, StoreError, FileNotFoundError, ValueError) as exc:
        print(f"wm {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"wm {args.command}: failed: {exc}", file=sys.stderr)
        return 1


def dispatch(args, config) -> int:
    if args.command == "collect":
        from wm.stages.collect import collect_shard

        if not 0 <= args.shard < config["collect"]["shards"]:
            raise ValueError(f"--shard {args.shard} is outside 0..{config['collect']['shards'] - 1} (collect.shards)")
        collect_shard(config, args.shard, args.out, {"vae": args.vae, "mdn": args.mdn, "controller": args.controller}
                      if config["collect"]["policy"] == "agent" else None)
    elif args.command == "data":
        return data_check(args.paths, args.kind)
    elif args.command == "train-vae":
        from wm.vae.train import train_vae

        train_vae(config, args.data, args.out)
    elif args.command == "encode":
        from wm.vae.encode import encode_shard

        encode_shard(config, args.vae, args.shard, args.out)
    elif args.command == "train-mdn":
        from wm.mdn.train import train_mdn

        train_mdn(config, args.latents, args.out)
    elif args.command == "train-controller":
        from wm.stages.train_controller import train_controller

        train_controller(config, args.variant, args.vae, args.mdn, args.out, args.latents)
    elif args.command == "export-controller":
        from wm.stages.train_controller import export_controller

        export_controller(config, args.variant, args.vae, args.mdn, args.out, args.to, args.latents)
    elif args.command == "diagnose":
        from wm.stages.diagnostics import diagnose

        diagnose(args.folder)
    elif args.command == "evaluate":
        from wm.stages.evaluate import evaluate

        if args.dream:
            from wm.stages.evaluate import evaluate_in_dream

            evaluate_in_dream(config, args.vae, args.mdn, args.controller, args.dream, args.out, args.tracks)
        else:
            evaluate(config, args.vae, args.mdn, args.controller, args.out, args.tracks)
    elif args.command == "dream-starts":
        from wm.mdn.dream_env import write_dream_starts

        write_dream_starts(args.latents, args.out)
    elif args.command == "evaluate-random":
        from wm.stages.evaluate import evaluate_random_policy

        evaluate_random_policy(config, args.out, args.tracks)
    elif args.command == "export":
        from wm.stages.export import export

        export(args.vae, args.mdn, args.controller, args.out)
    elif args.command == "dream":
        from wm.stages.dream import dream

        dream(config, args.vae, args.mdn, args.shard, args.out, args.start, args.steps, args.temperature,
              args.controller)
    return 0


def data_check(paths: list[Path], kind: str) -> int:
    from wm.rollouts.storage import check_paths

    return check_paths(paths, kind)


if __name__ == "__main__":
    sys.exit(main())
