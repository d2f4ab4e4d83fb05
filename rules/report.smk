# Reports written from result files.


rule teacher_report:
    input:
        images=expand(f"{RESULTS}/samples/{{system}}/images", system=SYSTEMS),
        accuracy=report_accuracy_inputs(),
        prompts=prompts_file(),
    output:
        md=report(f"{REPORTS}/teacher.md", caption="../report/teacher.rst", category="Toy world"),
        png=report(f"{REPORTS}/teacher_grid.png", caption="../report/teacher_grid.rst", category="Toy world"),
    params:
        systems=report_systems_json(),
        grid_prompts=config["report"]["grid_prompts"],
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/report/teacher.log",
    shell:
        "sb2bench report-teacher --systems {params.systems:q} --prompts {input.prompts} "
        "--out-md {output.md} --out-png {output.png} --grid-prompts {params.grid_prompts} "
        "--title 'Toy teacher: samples and attribute accuracy' > {log} 2>&1"
