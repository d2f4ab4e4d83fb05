# Input data. Toy world: the evaluation prompt set with its reference renders, and the training prompt stream.
# Real world: COCO-2014 data of the real-world protocols: optional download, SBv2's pinned dataset.json, the 30K
# prompt list, the 256-px reference. Both: training prompt files built from the datasets as distributed
# (training.prompt_sources).


rule eval_subset_prompts:
    input:
        prompts_file(),
    output:
        f"{RESULTS}/data/eval/prompts-first{{n}}.jsonl",
    conda:
        CONDA_ENV
    log:
        f"{LOGS}/data/eval_subset_{{n}}.log",
    shell:
        "sb2bench prompts-head --prompts {input} --n {wildcards.n} --out {output} > {log} 2>&1"



if WORLD == "toy":

    rule toy_eval_set:
        output:
            prompts=f"{RESULTS}/data/eval/prompts.jsonl",
            reference=directory(f"{RESULTS}/data/eval/reference"),
        params:
            n=config["toy"]["eval_set"]["n_prompts"],
            seed=config["toy"]["eval_set"]["seed"],
        conda:
            CONDA_ENV
        log:
            f"{LOGS}/data/eval_set.log",
        shell:
            "sb2bench toy-eval-set --n {params.n} --seed {params.seed} --prompts {output.prompts} "
            "--reference {output.reference} > {log} 2>&1"


    rule toy_train_prompts:
        output:
            f"{RESULTS}/data/train/prompts.jsonl",
        params:
            n=config["toy"]["train_prompts"]["n_prompts"],
            seed=config["toy"]["train_prompts"]["seed"],
        conda:
            CONDA_ENV
        log:
            f"{LOGS}/data/train_prompts.log",
        shell:
            "sb2bench toy-train-prompts --n {params.n} --seed {params.seed} --out {output} > {log} 2>&1"

else:

    if COCO["download"]["enabled"]:

        rule coco_download:
            output:
                val=directory(f"{COCO_ROOT}/val2014"),
                captions=f"{COCO_ROOT}/annotations/captions_val2014.json",
            params:
                files=json.dumps({"files": COCO["download"]["files"]}),
                root=COCO_ROOT,
            conda:
                CONDA_ENV
            log:
                f"{LOGS}/data/coco_download.log",
            shell:
                "sb2bench coco-download --files {params.files:q} --root {params.root} > {log} 2>&1"


    if COCO["dataset_json"] and COCO["dataset_json_url"]:

        rule coco_dataset_json:
            output:
                COCO["dataset_json"],
            params:
                url=COCO["dataset_json_url"],
                sha=f"--sha256 {COCO['dataset_json_sha256']}" if COCO["dataset_json_sha256"] else "",
            conda:
                CONDA_ENV
            log:
                f"{LOGS}/data/coco_dataset_json.log",
            shell:
                "sb2bench dataset-json --out {output} --url {params.url:q} {params.sha} > {log} 2>&1"


    rule coco_prompts:
        input:
            coco_prompt_source(),
        output:
            f"{RESULTS}/data/eval/prompts.jsonl",
        params:
            source=coco_prompt_flag(),
            n=COCO["n_prompts"],
            seed=COCO["caption_seed"],
        conda:
            CONDA_ENV
        log:
            f"{LOGS}/data/coco_prompts.log",
        shell:
            "sb2bench coco-prompts {params.source} {input} --n {params.n} --seed {params.seed} --out {output} > {log} 2>&1"


    rule coco_reference:
        input:
            f"{COCO_ROOT}/val2014",
        output:
            directory(f"{RESULTS}/data/eval/reference"),
        params:
            size=PROTOCOL["resize"]["size"] if PROTOCOL["resize"] else 256,
            expected=COCO["n_reference"] or "",
        threads: COCO["resize_threads"]
        resources:
            **job_resources("coco_reference"),
        conda:
            CONDA_ENV
        log:
            f"{LOGS}/data/coco_reference.log",
        benchmark:
            f"{BENCH}/data/coco_reference.tsv"
        shell:
            "sb2bench coco-reference --images {input} --out {output} --size {params.size} "
            "$([ -n '{params.expected}' ] && echo --expected {params.expected}) --threads {threads} > {log} 2>&1"


    rule protocol_resize_samples:
        input:
            images=f"{RESULTS}/samples/{{system}}/images",
            prompts=wildcard_prompts,
        output:
            directory(f"{RESULTS}/samples/{{system}}/images{{size}}"),
        threads: COCO["resize_threads"]
        conda:
            CONDA_ENV
        log:
            f"{LOGS}/sample/{{system}}/resize{{size}}.log",
        shell:
            "sb2bench protocol-resize --images {input.images} --prompts {input.prompts} --out {output} "
            "--size {wildcards.size} --threads {threads} > {log} 2>&1"


if PROMPT_BUILDS:

    rule prompts_build:
        input:
            lambda wc: prompt_build_inputs(wc.name),
        output:
            prompts=f"{PROMPT_BUILD_DIR}/{{name}}.jsonl",
            manifest=f"{PROMPT_BUILD_DIR}/{{name}}.manifest.json",
        wildcard_constraints:
            name="|".join(PROMPT_BUILD_NAMES),
        params:
            args=lambda wc: prompt_build_args(wc.name),
        conda:
            CONDA_ENV
        log:
            f"{LOGS}/data/prompts_build_{{name}}.log",
        benchmark:
            f"{BENCH}/data/prompts_build_{{name}}.tsv"
        shell:
            "sb2bench prompts-build {params.args} --out {output.prompts} --manifest {output.manifest} > {log} 2>&1"
