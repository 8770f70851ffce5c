rule collect:
    """One shard of rollouts (a SLURM array job on a cluster): the random policy's in the first round, round
    R-1's agent's in round R of iterative training."""
    input:
        unpack(collecting_agent),
    output:
        directory(f"{RUN}/{{round}}data/shard-{{shard}}.zarr"),
    conda:
        "../../envs/wm.yaml"
    log:
        f"{RUN}/logs/{{round}}collect/{{shard}}.log",
    params:
        wm_config=round_args,
        # Not env.id: an environment's ids give the same frames (CarRacing's fast twin is pixel-identical).
        settings=lambda wildcards: settled("collect", wildcards) | {"seed": config["seed"]} | ENV_RECORD
        | (ENCODER_DTYPE if collecting_agent(wildcards) else {}),
        shard=lambda wildcards: int(wildcards.shard),
        agent=lambda wildcards, input: "".join(f" --{name} {input[name]}" for name in ("vae", "mdn", "controller")
                                               if name in input.keys()),
    resources:  # local runs (make run); the cluster's sizes for this rule: profiles/slurm/config.yaml
        mem_mb=2000,
    shell:
        "wm collect {params.wm_config} --shard {params.shard}{params.agent} --out {output} > {log} 2>&1"
