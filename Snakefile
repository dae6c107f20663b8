"""weights2data: SELECT and every experiment of "Approximating LM Training Data from Weights"."""

from pathlib import Path

from snakemake.utils import min_version, validate

from weights2data.config import SCHEMA

min_version("9.0")


# config.yaml is the default; `--configfile other.yaml` replaces it (profiles are complete
# files, not patches: merging the default's datasets and tasks into them would be wrong).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


# the package's own schema (package data), the one `weights2data` steps validate with
validate(config, str(SCHEMA))


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/selection.smk"
include: "workflow/rules/evaluation.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/diagnostics.smk"
include: "workflow/rules/ablation_common.smk"


# every ablation in its own file; each registers its report with rule ablation_report
for ablation_file in sorted(
    Path(workflow.basedir, "workflow/rules/ablations").glob("*.smk")
):

    include: ablation_file


include: "workflow/rules/ablation_report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
        "figures/runtime.md",
