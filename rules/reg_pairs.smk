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
