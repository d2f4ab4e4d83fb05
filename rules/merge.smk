# Merge sweeps: theta = lambda A + (1 - lambda) B on each configured lambda grid (LoRA students fused first).


rule merge_students:
    input:
        merge_inputs,
    output:
        directory(f"{RESULTS}/merges/{{merge}}/lambda-{{lam}}"),
    params:
        env=hub_env(),
        a=lambda wildcards: merge_specs(wildcards)["a"],
        b=lambda wildcards: merge_specs(wildcards)["b"],
    resources:
        **job_resources("merge_students", GPUS_PER_JOB),
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/merge/{{merge}}/lambda-{{lam}}.log",
    benchmark:
        f"{BENCH}/merge/{{merge}}/lambda-{{lam}}.tsv"
    shell:
        "{params.env}sb2bench gpu-run --gpus {resources.gpu} -- sb2bench merge --a {params.a} --b {params.b} --lam {wildcards.lam} --out {output} > {log} 2>&1"


rule merge_sweep_report:
    input:
        sweep_inputs,
    output:
        md=report(f"{REPORTS}/sweep_{{merge}}.md", caption="../report/sweep.rst", category="Merge sweeps"),
        png=report(f"{REPORTS}/sweep_{{merge}}.png", caption="../report/sweep.rst", category="Merge sweeps"),
        svg=f"{REPORTS}/sweep_{{merge}}.svg",
        csv=f"{REPORTS}/sweep_{{merge}}.csv",
    params:
        sweep=sweep_json,
        prefix=lambda wildcards, output: os.path.splitext(output.md)[0],
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/report/sweep_{{merge}}.log",
    shell:
        "sb2bench report-sweep --sweep {params.sweep:q} --out-prefix {params.prefix} > {log} 2>&1"
