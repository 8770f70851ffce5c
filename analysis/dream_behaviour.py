"""How controllers drive on 4 real held-out tracks (wm/CarRacing-v3, the committed budget V and M)
and in M's dream at tau 1.25 from the same seeds: return, steps, tiles, how each episode ended and
the action statistics. Writes docs/results/dream/behaviour.json.

  .venv/bin/python analysis/dream_behaviour.py results/dream/controller_tau1.25/z_h/controller.pt \
      docs/results/budget/controller_z_h.pt
"""
import json, sys, glob, numpy as np, torch
from wm.envs import get_env
from wm.episodes.agent import load_trained_agent
from wm.episodes.runner import Episode, run_batch
from wm.episodes.dream import run_dream_batch
from wm.mdn.dream_env import DreamEnv, first_frames
from wm.mdn.model import load_mdn
from wm.seeding import seeds
torch.set_num_threads(1)
out = {}
for path in sys.argv[1:]:
    agent, c = load_trained_agent("docs/results/budget/vae.pt", "docs/results/budget/mdn.pt", path, env=get_env("car_racing"))
    tr, no = seeds(0, "heldout_track", 4), seeds(0, "heldout_noise", 4)
    res = run_batch("wm/CarRacing-v3", agent, [Episode(c.params, t, n) for t, n in zip(tr, no)], 1000)
    env = DreamEnv(load_mdn("docs/results/dream/mdn.pt"), first_frames(sorted(glob.glob("results/budget/latents/*.zarr"))), 1.25)
    dres = run_dream_batch(env, get_env("car_racing"), c.variant, [Episode(c.params, t, n) for t, n in zip(tr, no)], 1000)
    out[path] = {"real": [dict(ret=round(r.total_return, 1), steps=r.steps, tiles=r.tiles, ended=r.ended_by, action_mean=r.action_mean, action_std=r.action_std) for r in res],
                 "dream_tau1.25": [dict(ret=round(r.total_return, 1), steps=r.steps, ended=r.ended_by, action_mean=r.action_mean, action_std=r.action_std) for r in dres]}
    print(json.dumps({path: out[path]}, indent=0), flush=True)
json.dump(out, open("docs/results/dream/behaviour.json", "w"), indent=1)
