"""weights2data: SELECT and every experiment of "Approximating LM Training Data from Weights"."""

from snakemake.utils import min_version, validate

min_version("9.0")


# config.yaml is the default; `--configfile other.yaml` replaces it (profiles are complete
# files, not patches: merging the default's datasets and tasks into them would be wrong).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/selection.smk"
include: "workflow/rules/evaluation.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/diagnostics.smk"
include: "workflow/rules/ablation_common.smk"
include: "workflow/rules/ablation_scaling.smk"
include: "workflow/rules/ablation_leakage.smk"
include: "workflow/rules/ablation_replacement.smk"
include: "workflow/rules/ablation_projection.smk"
include: "workflow/rules/ablation_seed_pools.smk"
include: "workflow/rules/ablation_optimizer.smk"
include: "workflow/rules/ablation_checkpoints.smk"
include: "workflow/rules/ablation_report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
        "figures/runtime.md",
