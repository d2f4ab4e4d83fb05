# Report figures (config `figures`): the FID-CLIP trade-off, training-loss curves and a qualitative grid.
# What each figure draws (defaults included) is resolved in sb2bench/plan/figures.py, which the config
# check also uses; a figure with nothing to draw has no rule.
from sb2bench.plan.figures import figure_jobs  # noqa: E402

FIGURE_JOBS = figure_jobs(config, RESULTS)
FIGURE_FILES = {
    "trade_off": ["fig_fid_clip.png", "fig_fid_clip.svg", "fig_fid_clip.csv"],
    "loss_curves": ["fig_loss_curves.png", "fig_loss_curves.svg"],
    "qualitative": ["fig_qualitative.png", "fig_qualitative.svg", "fig_qualitative.md"],
}
# requested by `rule all` where the reports are made (systems scored on the toy set or COCO)
FIGURE_OUTPUTS = [f"{REPORTS}/{f}" for job in FIGURE_JOBS for f in FIGURE_FILES[job]] if evaluated() else []


if "trade_off" in FIGURE_JOBS:

    rule fig_fid_clip:
        input:
            FIGURE_JOBS["trade_off"]["inputs"],
        output:
            png=report(f"{REPORTS}/fig_fid_clip.png", caption="../report/fig_fid_clip.rst", category="Figures"),
            svg=f"{REPORTS}/fig_fid_clip.svg",
            csv=f"{REPORTS}/fig_fid_clip.csv",
        params:
            systems=json.dumps(FIGURE_JOBS["trade_off"]["spec"]),
            prefix=lambda wildcards, output: os.path.splitext(output.png)[0],
            title=f"{WORLD.capitalize()} world: FID vs CLIP score (protocol {PROTOCOL['name']})",
        conda:
            CONDA_ENV
        log:
            f"{LOGS}/report/fig_fid_clip.log",
        shell:
            "sb2bench report-trade-off --systems {params.systems:q} --out-prefix {params.prefix} "
            "--title {params.title:q} > {log} 2>&1"


if "loss_curves" in FIGURE_JOBS:

    rule fig_loss_curves:
        input:
            FIGURE_JOBS["loss_curves"]["inputs"],
        output:
            png=report(f"{REPORTS}/fig_loss_curves.png", caption="../report/fig_loss_curves.rst", category="Figures"),
            svg=f"{REPORTS}/fig_loss_curves.svg",
        params:
            runs=json.dumps(FIGURE_JOBS["loss_curves"]["spec"]),
            prefix=lambda wildcards, output: os.path.splitext(output.png)[0],
            title=f"{WORLD.capitalize()} world: training losses",
        conda:
            CONDA_ENV
        log:
            f"{LOGS}/report/fig_loss_curves.log",
        shell:
            "sb2bench report-loss-curves --runs {params.runs:q} --out-prefix {params.prefix} "
            "--title {params.title:q} > {log} 2>&1"


if "qualitative" in FIGURE_JOBS:

    rule fig_qualitative:
        input:
            images=FIGURE_JOBS["qualitative"]["inputs"],
            prompts=prompts_file(),
        output:
            png=report(f"{REPORTS}/fig_qualitative.png", caption="../report/fig_qualitative.rst", category="Figures"),
            svg=f"{REPORTS}/fig_qualitative.svg",
            md=f"{REPORTS}/fig_qualitative.md",
        params:
            systems=json.dumps(FIGURE_JOBS["qualitative"]["spec"]),
            indices=" ".join(map(str, FIGURE_JOBS["qualitative"]["indices"])),
            prefix=lambda wildcards, output: os.path.splitext(output.png)[0],
            title=f"{WORLD.capitalize()} world: same prompt and seed per column",
        conda:
            CONDA_ENV
        log:
            f"{LOGS}/report/fig_qualitative.log",
        shell:
            "sb2bench report-qualitative --systems {params.systems:q} --prompts {input.prompts} "
            "--indices {params.indices} --out-prefix {params.prefix} --title {params.title:q} > {log} 2>&1"
