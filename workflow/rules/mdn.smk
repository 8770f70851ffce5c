rule train_mdn:
    """M: the MDN-RNN on V's latent sequences (GPU when present)."""
    input:
        latents=every_rounds_latents,
        init=previous_mdn,
    # Not an output: mdn/tensorboard/, the event files written while the job runs (see rule train_vae).
    output:
        model=f"{RUN}/{{round}}mdn/model.pt",
        metrics=f"{RUN}/{{round}}mdn/metrics.csv",
        loss=report(f"{RUN}/{{round}}mdn/loss.png", caption="../report/mdn_loss.rst", category="2. M"),
    conda:
        "../../envs/wm.yaml"
    log:
        f"{RUN}/logs/{{round}}train_mdn.log",
    params:
        wm_config=round_args,
        settings=lambda wildcards: settled("mdn", wildcards) | {k: config[k] for k in ("seed", "device", "torch_threads")}
        | ENV_RECORD
        | TRAIN_DTYPE,
        out=lambda wildcards, output: os.path.dirname(output.model),
    threads: 8  # capped at the available cores when run locally
    resources:  # local runs (make run); the cluster's sizes for this rule: profiles/slurm/config.yaml
        mem_mb=16000,
    shell:
        "wm train-mdn {params.wm_config} --latents {input.latents} --out {params.out} > {log} 2>&1"


rule dream:
    """M's dream from a real frame, decoded by V, beside the real frames."""
    input:
        vae=f"{RUN}/vae/model.pt",
        mdn=f"{RUN}/mdn/model.pt",
        shard=f"{RUN}/data/shard-{SHARDS[0]}.zarr",
    output:
        report(f"{RUN}/mdn/dream.gif", caption="../report/dream.rst", category="2. M"),
    conda:
        "../../envs/wm.yaml"
    log:
        f"{RUN}/logs/dream.log",
    params:
        wm_config=WM_CONFIG,
    resources:  # local runs (make run); the cluster's sizes for this rule: profiles/slurm/config.yaml
        mem_mb=2000,
    shell:
        "wm dream {params.wm_config} --vae {input.vae} --mdn {input.mdn} --shard {input.shard} "
        "--out {output} > {log} 2>&1"
