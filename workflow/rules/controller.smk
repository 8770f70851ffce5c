DREAM = config["controller"]["environment"] == "dream"


rule train_controller:
    """C: CMA-ES as one MPI job, rank 0 the optimizer; resumes from its checkpoint after a failure.
    With controller.environment: dream (presets/dream.yaml) the rollouts run inside M, started from
    the latents' first frames, and the held-out score stays real (docs/dream.md)."""
    input:
        vae=f"{RUN}/vae/model.pt",
        mdn=f"{RUN}/{{round}}mdn/model.pt",
        init=previous_controller,
        latents=expand(f"{RUN}/latents/shard-{{shard}}.zarr", shard=SHARDS) if DREAM else [],
    # Not an output: controller/VARIANT/tensorboard/, the event files written while the job runs (see rule train_vae).
    output:
        controller=f"{RUN}/{{round}}controller/{{variant}}/controller.pt",
        log=f"{RUN}/{{round}}controller/{{variant}}/log.csv",
        curve=report(f"{RUN}/{{round}}controller/{{variant}}/curve.png", caption="../report/cma_curve.rst",
                     category="3. C", subcategory="{round}{variant}"),
        diagnostics=report(f"{RUN}/{{round}}controller/{{variant}}/diagnostics.png",
                           caption="../report/cma_diagnostics.rst", category="3. C", subcategory="{round}{variant}"),
    conda:
        "../../envs/wm.yaml"
    log:
        f"{RUN}/logs/{{round}}train_controller/{{variant}}.log",
    params:
        wm_config=round_args,
        # What the command reads: a change reruns the rule, and wm refuses or extends the checkpoint.
        settings=lambda wildcards: settled("controller", wildcards) | ENV_RECORD
        | {k: config[k] for k in ("seed", "env", "torch_threads")} | ({"device": config["device"]} if DREAM else {})
        | ENCODER_DTYPE,
        out=lambda wildcards, output: os.path.dirname(output.controller),
        latents=lambda wildcards, input: f"--latents {' '.join(input.latents)} " if DREAM else "",
    threads: config["controller"]["ranks"]
    resources:  # local runs (make run); the cluster's sizes for this rule: profiles/slurm/config.yaml
        mpi="mpiexec",  # MPICH's (the mpich wheel); profiles/slurm sets srun
        tasks=config["controller"]["ranks"],
        mem_mb_per_cpu=2000,
    shell:
        "{resources.mpi} -n {resources.tasks} "
        "wm train-controller {params.wm_config} --variant {wildcards.variant} "
        "--vae {input.vae} --mdn {input.mdn} {params.latents}--out {params.out} > {log} 2>&1"
