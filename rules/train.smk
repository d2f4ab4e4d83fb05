# VSD training: one job per run declared in training.runs; rerunning resumes from its latest checkpoint.
# A job with N > 1 GPUs trains data-parallel: accelerate launch of N processes (sb2bench/train/launch.py).


rule train_run:
    input:
        run_inputs,
    output:
        directory(f"{RESULTS}/runs/{{run}}/student"),
    params:
        env=hub_env(),
        config=run_json,
        out=lambda wildcards, output: os.path.dirname(output[0]),
        launch=lambda wildcards, resources: launch_shell(resources.gpu),
    threads: run_threads
    resources:
        gpu=GPUS_PER_TRAIN_JOB,
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/train/{{run}}.log",
    benchmark:
        f"{BENCH}/train/{{run}}.tsv"
    shell:
        "{params.env}sb2bench gpu-run --gpus {resources.gpu} -- {params.launch} train --config {params.config:q} --out {params.out} > {log} 2>&1"
