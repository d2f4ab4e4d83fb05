# Scoring of every sampled system under the configured protocol (toy world: against the reference renders,
# attribute accuracy included: the same job reads the images once more with the toy classifier).


rule evaluate_system:
    input:
        images=eval_images,
        reference=f"{RESULTS}/data/eval/reference",
        prompts=scored_prompts_file,
        hub=hub_inputs("feature_net", "clip", "classifier"),
    output:
        metrics=f"{RESULTS}/metrics/{{system}}/metrics.json",
        per_image=f"{RESULTS}/metrics/{{system}}/per_image.npz",  # what paired claims resample
        **eval_attribute_outputs(),  # toy world: attributes.json, what the teacher report reads
    params:
        env=hub_env(),
        protocol=config["evaluation"]["protocol"],
        models=eval_models_json(),
        cache=f"{RESULTS}/cache/features",
        device=config["evaluation"]["device"],
        bootstrap=json.dumps(config["evaluation"]["bootstrap"]),
        classifier=f"--classifier {classifier_spec()}" if WORLD == "toy" else "",
        # a whole-set system's samples hold more prompts than the subset scored here
        superset=lambda wildcards: "--images-superset" if wildcards.system in FULL_SET else "",
    resources:
        **job_resources("evaluate_system", GPUS_PER_JOB),
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/metrics/{{system}}/evaluate.log",
    benchmark:
        f"{BENCH}/metrics/{{system}}/evaluate.tsv"
    shell:
        "{params.env}sb2bench gpu-run --gpus {resources.gpu} -- sb2bench evaluate --images {input.images} --reference {input.reference} "
        "--prompts {input.prompts} --protocol {params.protocol} --models {params.models:q} "
        "{params.classifier} {params.superset} --cache {params.cache} --device {params.device} "
        "--bootstrap {params.bootstrap:q} --out {output.metrics} > {log} 2>&1"


# evaluation.subset's whole-set systems are scored a second time, on every prompt of the set: the narrow
# intervals of the headline systems, and the claims that compare only such systems.
use rule evaluate_system as evaluate_whole_set with:
    input:
        images=eval_images,
        reference=f"{RESULTS}/data/eval/reference",
        prompts=prompts_file(),
        hub=hub_inputs("feature_net", "clip", "classifier"),
    output:
        metrics=whole_set_metrics("{system}"),
        per_image=f"{RESULTS}/metrics/{{system}}/whole_set/per_image.npz",
        **({"attributes": f"{RESULTS}/metrics/{{system}}/whole_set/attributes.json"} if WORLD == "toy" else {}),
    resources:
        **job_resources("evaluate_whole_set", GPUS_PER_JOB),
    log:
        f"{LOGS}/metrics/{{system}}/evaluate_whole_set.log",
    benchmark:
        f"{BENCH}/metrics/{{system}}/evaluate_whole_set.tsv"


rule reference_attributes:
    input:
        images=f"{RESULTS}/data/eval/reference",
        prompts=prompts_file(),
        hub=hub_inputs("classifier"),
    output:
        f"{RESULTS}/metrics/{REFERENCE}/attributes.json",
    params:
        env=hub_env(),
        classifier=classifier_spec(),
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/metrics/{REFERENCE}/attributes.log",
    benchmark:
        f"{BENCH}/metrics/{REFERENCE}/attributes.tsv"
    shell:
        "{params.env}sb2bench attributes --images {input.images} --prompts {input.prompts} "
        "--classifier {params.classifier} --out {output} > {log} 2>&1"


rule eval_report:
    input:
        [f for name in SYSTEMS for f in metric_files(name)] + whole_set_metric_files(),
    output:
        md=report(f"{REPORTS}/eval.md", caption="../report/eval.rst", category="Evaluation"),
        csv=f"{REPORTS}/eval.csv",
    params:
        systems=eval_systems_json(),
        title=f"{WORLD.capitalize()} evaluation under protocol {PROTOCOL['name']} v{PROTOCOL['version']}",
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/report/eval.log",
    shell:
        "sb2bench report-eval --systems {params.systems:q} --out-md {output.md} --out-csv {output.csv} "
        "--title {params.title:q} > {log} 2>&1"


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
