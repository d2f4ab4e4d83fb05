# VSD training: one job per run declared in training.runs; rerunning resumes from its latest checkpoint.
# A job with N > 1 GPUs trains data-parallel: accelerate launch of N processes (sb2bench/train/launch.py).
# Runs whose LoRA-teacher warm-up is identical (same warm-up key, sb2bench/train/warmup.py) share one
# lora_warmup job and start from its folder (training.share_lora_warmup; one-process runs only).


rule lora_warmup:
    input:
        warmup_inputs,
    output:
        directory(f"{RESULTS}/warmups/{{key}}"),
    params:
        env=hub_env(),
        config=warmup_json,
    threads: warmup_threads
    resources:
        **job_resources("lora_warmup", GPUS_PER_TRAIN_JOB),
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/train/warmups/{{key}}.log",
    benchmark:
        f"{BENCH}/train/warmups/{{key}}.tsv"
    shell:
        "{params.env}sb2bench gpu-run --gpus {resources.gpu} -- sb2bench train-warmup --config {params.config:q} --out {output} > {log} 2>&1"


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
        **job_resources("train_run", GPUS_PER_TRAIN_JOB),
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/train/{{run}}.log",
    benchmark:
        f"{BENCH}/train/{{run}}.tsv"
    shell:
        "{params.env}sb2bench gpu-run --gpus {resources.gpu} -- {params.launch} train --config {params.config:q} --out {params.out} > {log} 2>&1"
