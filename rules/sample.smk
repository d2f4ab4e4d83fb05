# Sampling of configured systems on a prompt set: sharded, seed per prompt index, resumable.


rule sample_shard:
    input:
        prompts=wildcard_prompts,
        hub=hub_inputs(),
        student=system_inputs,
    output:
        directory(f"{RESULTS}/samples/{{system}}/shards/{{shard}}-of-{{n}}"),
    params:
        env=hub_env(),
        system=system_json,
        batch_size=config["teacher_sampling"]["batch_size"],
        runtime=f"--device {config['teacher_sampling']['device']} --dtype {config['teacher_sampling']['dtype']}",
    threads: config["teacher_sampling"]["threads"]
    resources:
        **job_resources("sample_shard", GPUS_PER_JOB),
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/sample/{{system}}/{{shard}}-of-{{n}}.log",
    benchmark:
        f"{BENCH}/sample/{{system}}/{{shard}}-of-{{n}}.tsv"
    shell:
        "{params.env}sb2bench gpu-run --gpus {resources.gpu} -- sb2bench sample --system {params.system:q} --prompts {input.prompts} --out {output} "
        "--shard {wildcards.shard} --n-shards {wildcards.n} --batch-size {params.batch_size} {params.runtime} "
        "--threads {threads} > {log} 2>&1"


rule gather_samples:
    input:
        shard_dirs,
    output:
        directory(f"{RESULTS}/samples/{{system}}/images"),
    params:
        expected=lambda wildcards: system_n_prompts(wildcards.system),
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/gather/{{system}}.log",
    shell:
        "sb2bench gather --shards {input} --out {output} --expected {params.expected} > {log} 2>&1"

