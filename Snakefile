# World Models on CarRacing: collect -> V -> M -> C -> evaluate -> report.
# A table of contents: the rules live in workflow/rules/, one file per stage, each a single `wm` command.

configfile: "config.yaml"
container: os.environ.get("WM_IMAGE", "docker://ghcr.io/wm-project/wm:0.1.0")  # with --sdm apptainer; docs/cluster.md


include: "workflow/rules/common.smk"
include: "workflow/rules/plugin_fixes.smk"
include: "workflow/rules/collect.smk"
include: "workflow/rules/vae.smk"
include: "workflow/rules/mdn.smk"
include: "workflow/rules/controller.smk"
include: "workflow/rules/evaluate.smk"


report: "workflow/report/workflow.rst"


rule all:
    input:
        # every round's evaluation (iterate.rounds: 0 = the paper's one round)
        expand(f"{RUN}/{{round}}eval/{{variant}}/returns.json", round=map(round_folder, ROUNDS), variant=VARIANTS),
        f"{RUN}/mdn/dream.gif",
    default_target: True


onsuccess:
    print(f"wm: done. Report: snakemake --report {RUN}/report.html (make run writes it)")


onerror:
    print(f"wm: a job failed; its log is under {RUN}/logs/. Rerun the same command to resume.")
