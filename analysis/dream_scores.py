"""Dream returns of controllers in M's dream (docs/results/dream/mdn.pt: the budget M + fitted heads),
N dream episodes each (seeded by the evaluation tracks' seeds), at tau 1.0, 1.15 and 1.25; "zeros" is
the all-zero controller (straight on, gas 0.5). Prints one line per (controller, tau) and writes
them to the JSON file named by the environment variable OUT (default /tmp/dream_scores.json).

  OUT=docs/results/dream/dream_scores_committed.json .venv/bin/python analysis/dream_scores.py 64 \
      zeros docs/results/budget/controller_z_h.pt
"""
import glob, json, os, sys
import numpy as np, torch
from wm.controller.model import load_controller
from wm.envs import get_env
from wm.episodes.dream import run_dream_batch
from wm.episodes.runner import Episode
from wm.mdn.dream_env import DreamEnv, first_frames
from wm.mdn.model import load_mdn
from wm.seeding import seeds
torch.set_num_threads(1)
mdn = load_mdn("docs/results/dream/mdn.pt")
starts = first_frames(sorted(glob.glob("results/budget/latents/*.zarr")))
out = {}
n = int(sys.argv[1]); paths = sys.argv[2:]
tracks, noises = seeds(0, "evaluate_track", n), seeds(0, "evaluate_noise", n)
for tau in (1.0, 1.15, 1.25):
    env = DreamEnv(mdn, starts, tau)
    for path in paths:
        if path == "zeros":
            params, variant = np.zeros(867), "z_h"
        else:
            c = load_controller(path, 32, 256, 3); params, variant = c.params, c.variant
        res = run_dream_batch(env, get_env("car_racing"), variant, [Episode(params, t, s) for t, s in zip(tracks, noises)], 1000)
        r = np.array([x.total_return for x in res])
        ended = sum(x.ended_by == "terminated" for x in res)
        out[f"{path} tau={tau}"] = {"mean": float(r.mean()), "std": float(r.std()), "terminated": int(ended),
                                    "mean_steps": float(np.mean([x.steps for x in res])),
                                    "action_mean": np.mean([x.action_mean for x in res], 0).round(3).tolist()}
        print(path, tau, out[f"{path} tau={tau}"], flush=True)
json.dump(out, open(os.environ.get("OUT", "/tmp/dream_scores.json"), "w"), indent=1)
