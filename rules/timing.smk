# Inference time per image under SBv2's Table 8 protocol (timing.*): one job per timed system, then a table.


rule timing_system:
    input:
        hub=hub_inputs(),
        student=system_inputs,
    output:
        f"{RESULTS}/timing/{{system}}.json",
    params:
        env=hub_env(),
        system=system_json,
        protocol=(
            f"--warmup {TIMING['warmup']} --runs {TIMING['runs']} --repeats {TIMING['repeats']} "
            f"--device {TIMING['device']} --dtype {TIMING['dtype']} --threads {TIMING['threads']}"
        ),
    threads: timing_threads()
    resources:
        **job_resources("timing_system", GPUS_PER_JOB),
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/timing/{{system}}.log",
    shell:
        "{params.env}sb2bench gpu-run --gpus {resources.gpu} -- sb2bench timing --system {params.system:q} {params.protocol} "
        "--out {output} > {log} 2>&1"


rule timing_report:
    input:
        [f"{RESULTS}/timing/{s['system']}.json" for s in TIMING["systems"]],
    output:
        report(f"{REPORTS}/timing.md", caption="../report/timing.rst", category="Timing"),
    params:
        systems=timing_systems_json(),
        title=f"{WORLD.capitalize()} inference time per image (SBv2 Table 8 protocol)",
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/report/timing.log",
    shell:
        "sb2bench report-timing --systems {params.systems:q} --out {output} --title {params.title:q} > {log} 2>&1"
