rule train_mdn:
    """M: the MDN-RNN on V's latent sequences (GPU when present)."""
    input:
        expand(f"{RUN}/latents/shard-{{shard}}.zarr", shard=SHARDS),
    output:
        model=f"{RUN}/mdn/model.pt",
        metrics=f"{RUN}/mdn/metrics.csv",
        loss=report(f"{RUN}/mdn/loss.png", caption="../report/mdn_loss.rst", category="2. M"),
    conda:
        "../../envs/wm.yaml"
    log:
        f"{RUN}/logs/train_mdn.log",
    params:
        wm_config=WM_CONFIG,
        settings=config["mdn"],
        out=lambda wildcards, output: os.path.dirname(output.model),
    threads: workflow.cores
    resources:
        runtime=720,
        mem_mb=16000,
    shell:
        "wm train-mdn {params.wm_config} --latents {input} --out {params.out} > {log} 2>&1"
