"""Issue 15's experiment, step 1: give the committed budget M (docs/results/budget/mdn.pt) a reward
and a done head, fitted on its own LSTM outputs over the budget data, with M's weights frozen.

Why not `wm train-mdn` with mdn.reward_weight / mdn.done_weight (which trains the heads jointly with
M): on the shared 2-core VM a budget M takes 23+ minutes, and the frozen M is the one the budget and
solve controllers drive with, so a dream-trained C sees the same h in the dream and on real tracks.
The heads are linear in h, so they are fitted exactly: least squares for the reward, logistic
regression (full-batch L-BFGS) for the done logit. Writes mdn.pt (M + heads, float32: the LSTM is
the committed one bit for bit) and heads.json (validation errors against the trivial baselines).

  .venv/bin/python analysis/dream_fit_heads.py results/budget/latents/*.zarr --out docs/results/dream
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from wm.files import load_checkpoint, save_torch, versions
from wm.mdn.model import MDNRNN
from wm.rollouts.readers import open_stores


@torch.inference_mode()
def features(mdn, stores, generator):
    """Per episode: the LSTM outputs h_t after reading (z_t, a_t) for every step t (z sampled from
    V's posterior, as in training), with that step's reward and termination."""
    out = []
    for store in stores:
        for e in range(store.episodes):
            ep = store.episode(e, ["mu", "logvar", "actions", "rewards", "terminated"])
            mu, logvar = torch.from_numpy(ep["mu"]), torch.from_numpy(ep["logvar"])
            z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator)
            h, _ = mdn.lstm(torch.cat([z, torch.from_numpy(ep["actions"])], -1).unsqueeze(0))
            out.append((h[0], torch.from_numpy(ep["rewards"]), torch.from_numpy(ep["terminated"]).float()))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("latents", nargs="+")
    parser.add_argument("--mdn", default="docs/results/budget/mdn.pt")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    checkpoint = load_checkpoint(args.mdn, "mdn")
    mdn = MDNRNN(checkpoint["z_dim"], hidden=checkpoint["hidden"], gaussians=checkpoint["gaussians"],
                 reward_head=True, done_head=True)
    mdn.load_state_dict(checkpoint["state_dict"], strict=False)
    mdn.eval()
    episodes = features(mdn, open_stores(args.latents, "latents"), torch.Generator().manual_seed(15))
    order = np.random.default_rng(15).permutation(len(episodes))
    held = max(1, len(episodes) // 20)
    split = {"validation": [episodes[i] for i in order[:held]], "training": [episodes[i] for i in order[held:]]}
    data = {k: [torch.cat(parts) for parts in zip(*v)] for k, v in split.items()}
    h, r, d = data["training"]
    x = torch.cat([h, torch.ones(len(h), 1)], 1).double()
    # Reward: least squares with a little ridge, on the steps that do not end the episode (as
    # wm train-mdn's reward head: wm/mdn/model.py's reward_mask; the -100 of leaving the playfield is
    # the done head's to learn).
    keep = d == 0
    xk = x[keep]
    w = torch.linalg.solve(xk.T @ xk + 1e-3 * torch.eye(x.shape[1], dtype=x.dtype), xk.T @ r[keep].double())
    # Done: logistic regression, full-batch L-BFGS.
    v = torch.zeros(x.shape[1], dtype=x.dtype, requires_grad=True)
    v.data[-1] = math.log(max(d.mean().item(), 1e-6))
    opt = torch.optim.LBFGS([v], max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(x @ v, d.double()) + 1e-4 * v[:-1].pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        mdn.reward_head.weight.copy_(w[:-1].float()[None]); mdn.reward_head.bias.copy_(w[-1:].float())
        mdn.done_head.weight.copy_(v[:-1].detach().float()[None]); mdn.done_head.bias.copy_(v[-1:].detach().float())
    report = {"mdn": args.mdn, "episodes": {k: len(s) for k, s in split.items()},
              "steps": {k: len(t[0]) for k, t in data.items()}}
    with torch.no_grad():
        for name, (h, r, d) in data.items():
            reward, logit = mdn.outcomes(h)
            rate = d.mean().item()
            keep = d == 0
            report[name] = {
                "reward_mse": F.mse_loss(reward[keep], r[keep]).item(),  # steps that do not end the episode
                "reward_baseline_mse": r[keep].var(unbiased=False).item(),  # always their own mean reward
                "reward_correlation": float(torch.corrcoef(torch.stack([reward[keep], r[keep]]))[0, 1]),
                "done_bce": F.binary_cross_entropy_with_logits(logit, d).item(),
                "done_baseline_bce": -(rate * math.log(rate) + (1 - rate) * math.log(1 - rate)) if 0 < rate < 1 else 0.0,
                "terminations": int(d.sum()), "done_recall": float(((logit > 0) & (d > 0)).sum() / max(d.sum(), 1)),
                "done_false_alarm": float(((logit > 0) & (d == 0)).sum() / max((d == 0).sum(), 1)),
                "reward_mean": r.mean().item(), "reward_positive_share": float((r > 0).float().mean()),
            }
    report["seconds"] = round(time.perf_counter() - start, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    save_torch(args.out / "mdn.pt", {"kind": "mdn", "z_dim": mdn.z_dim, "hidden": mdn.hidden,
                                     "gaussians": mdn.gaussians, "reward_head": True, "done_head": True,
                                     "state_dict": mdn.state_dict(), "config": checkpoint.get("config"),
                                     "heads": "fitted on the frozen M by analysis/dream_fit_heads.py",
                                     "versions": versions()})
    (args.out / "heads.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
