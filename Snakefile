# sb2bench: one DAG from the model hub to every report of SwiftBrush v2.
# Default: the toy world on a CPU (config/default.yaml). Paper scale: --configfile config/paper.yaml.
import os

from snakemake.utils import min_version

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config", "default.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/toy.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/merge.smk"
include: "rules/sample.smk"
include: "rules/evaluate.smk"
include: "rules/timing.smk"
include: "rules/figures.smk"
include: "rules/report.smk"


check_rule_resources()


rule all:
    default_target: True
    input:
        final_outputs(),
        FIGURE_OUTPUTS,
