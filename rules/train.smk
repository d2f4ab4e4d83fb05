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


# Teacher ODE pairs of the image regulariser (SBv2 "Ours*", DMD's paired regression), shared by every run
# with reg_weight > 0 that names no pairs folder of its own.


rule reg_pairs:
    input:
        prompts=reg_pairs_prompts(),
        hub=hub_inputs("teacher", "vae", "tokenizer"),
    output:
        directory(reg_pairs_dir(RESULTS)),
    params:
        env=hub_env(),
        teacher=config["models"]["teacher"],
        n=REG_PAIRS["n"],
        steps=REG_PAIRS["steps"],
        cfg=REG_PAIRS["cfg"],
        seed=REG_PAIRS["seed"],
        batch_size=REG_PAIRS["batch_size"],
        runtime=f"--device {config['teacher_sampling']['device']}",
    threads: REG_PAIRS["threads"]
    resources:
        **job_resources("reg_pairs", GPUS_PER_JOB),
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/train/reg_pairs.log",
    benchmark:
        f"{BENCH}/train/reg_pairs.tsv"
    shell:
        "{params.env}OMP_NUM_THREADS={threads} sb2bench gpu-run --gpus {resources.gpu} -- sb2bench train-reg-pairs "
        "--teacher {params.teacher} --prompts {input.prompts} --n {params.n} --steps {params.steps} --cfg {params.cfg} "
        "--seed {params.seed} --batch-size {params.batch_size} {params.runtime} --out {output} > {log} 2>&1"
