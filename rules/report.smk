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


rule result_table:
    input:
        table_metric_files,
    output:
        md=report(f"{REPORTS}/{{table}}.md", caption="../report/result_table.rst", category="Tables"),
        csv=f"{REPORTS}/{{table}}.csv",
        tex=f"{REPORTS}/{{table}}.tex",
    params:
        table=table_json,
        metrics=table_metrics_json,
        world=WORLD,
        out_dir=output_parent,
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/report/{{table}}.log",
    shell:
        "sb2bench report-table --table {params.table:q} --metrics {params.metrics:q} --world {params.world} "
        "--out-dir {params.out_dir} > {log} 2>&1"


rule world_index:
    input:
        index_inputs(),
    output:
        report(f"{REPORTS}/index.md", caption="../report/index.rst", category="Index"),
    params:
        spec=index_spec(),
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/report/index.log",
    shell:
        "sb2bench report-index --spec {params.spec:q} --out {output} > {log} 2>&1"


rule top_index:
    input:
        ancient(f"{REPORTS}/index.md"),
    output:
        "reports/index.md",
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/report/top_index.log",
    shell:
        "sb2bench report-top-index --reports reports --out {output} > {log} 2>&1"


rule benchmark_report:
    input:
        [f for name in SYSTEMS for f in metric_files(name)] + reference_accuracy_inputs(),
    output:
        md=report(f"{REPORTS}/benchmarks.md", caption="../report/benchmarks.rst", category="Benchmarks"),
        csv=report(f"{REPORTS}/benchmarks.csv", caption="../report/benchmarks.rst", category="Benchmarks"),
    params:
        bench=BENCH,
        logs=LOGS,
        files=json.dumps(benchmark_files()),
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/report/benchmarks.log",
    shell:
        "sb2bench report-benchmarks --bench-dir {params.bench} --log-dir {params.logs} --files {params.files:q} --out-md {output.md} "
        "--out-csv {output.csv} > {log} 2>&1"
