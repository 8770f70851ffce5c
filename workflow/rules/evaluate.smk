rule evaluate:
    """The agent on held-out episodes of its environment's evaluation id (CarRacing: gymnasium's CarRacing-v3)."""
    input:
        vae=f"{RUN}/vae/model.pt",
        mdn=f"{RUN}/{{round}}mdn/model.pt",
        controller=f"{RUN}/{{round}}controller/{{variant}}/controller.pt",
    # Not an output: eval/VARIANT/tensorboard/, the event files written while the job runs (see rule train_vae).
    output:
        returns=f"{RUN}/{{round}}eval/{{variant}}/returns.json",
        histogram=report(f"{RUN}/{{round}}eval/{{variant}}/histogram.png", caption="../report/histogram.rst",
                         category="4. Evaluation", subcategory="{round}{variant}"),
    conda:
        "../../envs/wm.yaml"
    log:
        f"{RUN}/logs/{{round}}evaluate/{{variant}}.log",
    params:
        wm_config=WM_CONFIG,
        settings=settled("evaluate") | {k: config[k] for k in ("seed", "torch_threads")} | ENCODER_DTYPE | ENV_RECORD,
        out=lambda wildcards, output: os.path.dirname(output.returns),
    threads: config["evaluate"]["ranks"]
    resources:  # local runs (make run); the cluster's sizes for this rule: profiles/slurm/config.yaml
        mpi="mpiexec",  # MPICH's (the mpich wheel); profiles/slurm sets srun
        tasks=config["evaluate"]["ranks"],
        mem_mb_per_cpu=2000,
    shell:
        "{resources.mpi} -n {resources.tasks} wm evaluate {params.wm_config} --vae {input.vae} --mdn {input.mdn} --controller {input.controller} "
        "--out {params.out} > {log} 2>&1"
