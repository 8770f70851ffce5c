rule collect:
    """One shard of random-policy rollouts (a SLURM array job on a cluster)."""
    output:
        directory(f"{RUN}/data/shard-{{shard}}.zarr"),
    conda:
        "../../envs/wm.yaml"
    log:
        f"{RUN}/logs/collect/{{shard}}.log",
    params:
        wm_config=WM_CONFIG,
        # Not env.id: wm/CarRacing-v3 is pixel-identical to CarRacing-v3, so switching does not change the data.
        settings=settled("collect") | {"seed": config["seed"]},
        shard=lambda wildcards: int(wildcards.shard),
    resources:  # local runs (make run); the cluster's sizes for this rule: profiles/slurm/config.yaml
        mem_mb=2000,
    shell:
        "wm collect {params.wm_config} --shard {params.shard} --out {output} > {log} 2>&1"
