# HPSv2 on its four benchmark prompt sets (toy world: style-forced toy prompts, toy CLIP stand-in).


rule hps_prompts:
    output:
        expand(f"{RESULTS}/data/hps/{{style}}.jsonl", style=HPS_STYLES),
    params:
        n=HPS["n_per_style"] or "",
        seed=HPS["seed"],
        benchmark=HPS["benchmark"] or "",
        styles=" ".join(HPS_STYLES),
        folder=output_parent,
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/data/hps_prompts.log",
    shell:
        "sb2bench hps-prompts --styles {params.styles} --seed {params.seed} --out-dir {params.folder} "
        "$([ -n '{params.n}' ] && echo --n {params.n}) "
        "$([ -n '{params.benchmark}' ] && echo --benchmark {params.benchmark}) > {log} 2>&1"


rule hps_sample:
    input:
        prompts=expand(f"{RESULTS}/data/hps/{{style}}.jsonl", style=HPS_STYLES),
        hub=hub_inputs(),
        student=system_inputs,
    output:
        directory(f"{RESULTS}/hps/{{system}}"),
    params:
        env=hub_env(),
        system=system_json,
        styles=" ".join(HPS_STYLES),
        batch_size=config["teacher_sampling"]["batch_size"],
        runtime=f"--device {config['teacher_sampling']['device']} --dtype {config['teacher_sampling']['dtype']}",
    threads: config["teacher_sampling"]["threads"]
    resources:
        **job_resources("hps_sample", GPUS_PER_JOB),
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/hps/{{system}}.log",
    benchmark:
        f"{BENCH}/hps/{{system}}.tsv"
    shell:
        "{params.env}sb2bench gpu-run --gpus {resources.gpu} -- sb2bench sample-sets --system {params.system:q} --names {params.styles} "
        "--prompts {input.prompts} --out {output} --batch-size {params.batch_size} {params.runtime} --threads {threads} > {log} 2>&1"


rule hps_score:
    input:
        images=f"{RESULTS}/hps/{{system}}",
        prompts=expand(f"{RESULTS}/data/hps/{{style}}.jsonl", style=HPS_STYLES),
        hub=hub_inputs("clip"),
    output:
        f"{RESULTS}/metrics/{{system}}/hps.json",
    params:
        env=hub_env(),
        styles=" ".join(HPS_STYLES),
        protocol=config["evaluation"]["protocol"],
        version=HPS["version"],
        model=config["models"]["hps"],
        checkpoint=f"--checkpoint {HPS['checkpoint']}" if HPS["checkpoint"] else "",
    resources:
        **job_resources("hps_score", GPUS_PER_JOB),
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/metrics/{{system}}/hps.log",
    benchmark:
        f"{BENCH}/metrics/{{system}}/hps.tsv"
    shell:
        "{params.env}sb2bench gpu-run --gpus {resources.gpu} -- sb2bench hps-evaluate --styles {params.styles} --images-root {input.images} "
        "--prompts {input.prompts} --protocol {params.protocol} --version {params.version} "
        "--model {params.model:q} {params.checkpoint} --out {output} > {log} 2>&1"
