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
        # Not env.id: wm/CarRacing-v3 is pixel-identical to CarRacing-v3, so switching does not change the data.
        settings=lambda wildcards: settled("collect", wildcards) | {"seed": config["seed"]}
        | (ENCODER_DTYPE if collecting_agent(wildcards) else {}),
        shard=lambda wildcards: int(wildcards.shard),
        agent=lambda wildcards, input: "".join(f" --{name} {input[name]}" for name in ("vae", "mdn", "controller")
                                               if name in input.keys()),
    resources:  # local runs (make run); the cluster's sizes for this rule: profiles/slurm/config.yaml
        mem_mb=2000,
    shell:
        "wm collect {params.wm_config} --shard {params.shard}{params.agent} --out {output} > {log} 2>&1"
