# Prompt sets. Toy world: the evaluation set with its reference renders, and the training stream. Real world:
# the training prompt files built from the datasets as distributed (training.prompt_sources).


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
