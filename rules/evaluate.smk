# Scoring of every sampled system under the configured protocol (toy world: against the reference renders).


rule evaluate_system:
    input:
        images=f"{RESULTS}/samples/{{system}}/images",
        reference=f"{RESULTS}/data/eval/reference",
        prompts=prompts_file(),
        attributes=f"{RESULTS}/metrics/{{system}}/attributes.json",
        hub=hub_inputs("feature_net", "clip"),
    output:
        f"{RESULTS}/metrics/{{system}}/metrics.json",
    params:
        env=hub_env(),
        protocol=config["evaluation"]["protocol"],
        models=eval_models_json(),
        cache=f"{RESULTS}/cache/features",
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/metrics/{{system}}/evaluate.log",
    benchmark:
        f"{BENCH}/metrics/{{system}}/evaluate.tsv"
    shell:
        "{params.env}sb2bench evaluate --images {input.images} --reference {input.reference} "
        "--prompts {input.prompts} --protocol {params.protocol} --models {params.models:q} "
        "--attributes {input.attributes} --cache {params.cache} --out {output} > {log} 2>&1"


rule eval_report:
    input:
        expand(f"{RESULTS}/metrics/{{system}}/metrics.json", system=SYSTEMS),
    output:
        md=report(f"{REPORTS}/eval.md", caption="../report/eval.rst", category="Evaluation"),
        csv=f"{REPORTS}/eval.csv",
    params:
        systems=eval_systems_json(),
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/report/eval.log",
    shell:
        "sb2bench report-eval --systems {params.systems:q} --out-md {output.md} --out-csv {output.csv} "
        "--title 'Toy evaluation: every system against the reference renders' > {log} 2>&1"
