# Scoring of every sampled system under the configured protocol (toy world: against the reference renders).


rule evaluate_system:
    input:
        images=eval_images,
        reference=f"{RESULTS}/data/eval/reference",
        prompts=prompts_file(),
        attributes=eval_attributes,
        hub=hub_inputs("feature_net", "clip"),
    output:
        f"{RESULTS}/metrics/{{system}}/metrics.json",
    params:
        env=hub_env(),
        protocol=config["evaluation"]["protocol"],
        models=eval_models_json(),
        cache=f"{RESULTS}/cache/features",
        device=config["evaluation"]["device"],
        bootstrap=json.dumps(config["evaluation"]["bootstrap"]),
        attributes=lambda wildcards, input: f"--attributes {input.attributes}" if input.attributes else "",
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
        "{params.attributes} --cache {params.cache} --device {params.device} --bootstrap {params.bootstrap:q} "
        "--out {output} > {log} 2>&1"


rule eval_report:
    input:
        [f for name in SYSTEMS for f in metric_files(name)],
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
