"""Does the Zarr reader keep up with training? Frames/s the readers deliver versus frames/s one
training step consumes, measured side by side on the same shards.

    .venv/bin/python benchmarks/bench_loader.py SHARD.zarr [SHARD.zarr ...] [--batches 20]

V: shuffled frame minibatches (frame_batches) over one epoch versus a ConvVAE Adam step on them.
M: sequence windows from latent stores, if given with --latents, versus an MDN-RNN step.
A ratio above 1 means the reader is faster than training on this machine; on a GPU, where a
step is ~50x faster, compare the reader's frames/s with the GPU step's."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from wm.mdn.model import MDNRNN
from wm.mdn.train import batch_loss
from wm.rollouts.readers import frame_batches, open_stores, sequence_batches, sequence_windows
from wm.vae.model import ConvVAE, to_input, vae_loss


def rate(iterator, count: int, size) -> float:
    start, items = time.perf_counter(), 0
    for _, batch in zip(range(count), iterator):
        items += size(batch)
    return items / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shards", nargs="+", type=Path)
    parser.add_argument("--latents", nargs="*", type=Path, default=[])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    stores = open_stores(args.shards, "rollouts")
    # The reader over one whole epoch (its shuffle buffer fills in bursts), training over a few steps.
    read = rate(frame_batches(stores, args.batch_size, 8, np.random.default_rng(0)), 10**9, len)
    vae = ConvVAE()
    optimizer = torch.optim.Adam(vae.parameters(), 1e-4)

    def vae_steps():
        for frames in frame_batches(stores, args.batch_size, 8, np.random.default_rng(1)):
            x = to_input(torch.from_numpy(frames))
            recon, mu, logvar = vae(x)
            loss, _, _ = vae_loss(recon, x, mu, logvar, 0.5)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            yield frames

    train = rate(vae_steps(), args.batches, len)
    print(f"V: reader {read:9.0f} frames/s | read + train step {train:7.0f} frames/s "
          f"(torch threads {torch.get_num_threads()}) | reader / training {read / train:6.1f}x")
    if args.latents:
        latents = open_stores(args.latents, "latents")
        windows = sequence_windows(latents, 100)
        steps = lambda b: int(b["mask"].sum())  # noqa: E731
        read = rate(sequence_batches(latents, windows, 100, 32, np.random.default_rng(0)), 10**9, steps)
        mdn = MDNRNN()
        optimizer = torch.optim.Adam(mdn.parameters(), 1e-3)

        def mdn_steps():
            for batch in sequence_batches(latents, windows, 100, 32, np.random.default_rng(1)):
                loss, _, _ = batch_loss(mdn, batch, torch.device("cpu"))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                yield batch

        train = rate(mdn_steps(), args.batches, steps)
        print(f"M: reader {read:9.0f} steps/s  | read + train step {train:7.0f} steps/s  | "
              f"reader / training {read / train:6.1f}x")


if __name__ == "__main__":
    main()
