# Merge sweeps: theta = lambda A + (1 - lambda) B on each configured lambda grid (LoRA students fused first).
# One job per sweep: A and B load once and every lambda of the grid is written into the sweep folder, which is
# the job's output (a merged system's UNet is a lambda-<λ> folder inside it: system_inputs).


rule merge_students:
    input:
        merge_inputs,
    output:
        directory(merge_sweep_dir(RESULTS, "{merge}")),
    params:
        env=hub_env(),
        a=lambda wildcards: merge_specs(wildcards)["a"],
        b=lambda wildcards: merge_specs(wildcards)["b"],
        lambdas=lambda wildcards: " ".join(lam_name(lam) for lam in MERGES[wildcards.merge]["lambdas"]),
    resources:
        **job_resources("merge_students", GPUS_PER_JOB),
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/merge/{{merge}}.log",
    benchmark:
        f"{BENCH}/merge/{{merge}}.tsv"
    shell:
        "{params.env}sb2bench gpu-run --gpus {resources.gpu} -- sb2bench merge --a {params.a} --b {params.b} "
        "--lam {params.lambdas} --out-sweep {output} > {log} 2>&1"


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
