rule train_vae:
    """V: the ConvVAE on every collected frame (GPU when present), with the collapse guard."""
    input:
        expand(f"{RUN}/data/shard-{{shard}}.zarr", shard=SHARDS),
    # Not outputs: the TensorBoard event files in vae/tensorboard/ (wm/metrics.py). They grow while
    # the job runs and stay when it is killed, so declared they would make an interrupted run look
    # complete (and Snakemake would delete them before a rerun, losing the curves a resume continues);
    # they are a view of metrics.csv, which the report uses. `tensorboard` is not in params
    # either: turning it off or on changes no output, so it reruns nothing.
    output:
        model=f"{RUN}/vae/model.pt",
        metrics=f"{RUN}/vae/metrics.csv",
        summary=f"{RUN}/vae/summary.json",
        reconstructions=report(f"{RUN}/vae/reconstructions.png", caption="../report/reconstructions.rst",
                               category="1. V"),
    conda:
        "../../envs/wm.yaml"
    log:
        f"{RUN}/logs/train_vae.log",
    params:
        wm_config=WM_CONFIG,
        settings=config["vae"] | {k: config[k] for k in ("seed", "device", "torch_threads")} | TRAIN_DTYPE | ENV_RECORD,
        out=lambda wildcards, output: os.path.dirname(output.model),
    threads: 8  # capped at the available cores when run locally
    resources:  # local runs (make run); the cluster's sizes for this rule: profiles/slurm/config.yaml
        mem_mb=16000,
    shell:
        "wm train-vae {params.wm_config} --data {input} --out {params.out} > {log} 2>&1"


rule encode:
    """V's posterior (mu, log sigma^2) for every frame of one shard (of any round: V is the first round's)."""
    input:
        vae=f"{RUN}/vae/model.pt",
        shard=f"{RUN}/{{round}}data/shard-{{shard}}.zarr",
    output:
        directory(f"{RUN}/{{round}}latents/shard-{{shard}}.zarr"),
    conda:
        "../../envs/wm.yaml"
    log:
        f"{RUN}/logs/{{round}}encode/{{shard}}.log",
    params:
        wm_config=WM_CONFIG,
    resources:  # local runs (make run); the cluster's sizes for this rule: profiles/slurm/config.yaml
        mem_mb=2000,
    shell:
        "wm encode {params.wm_config} --vae {input.vae} --shard {input.shard} --out {output} > {log} 2>&1"
