# Prompt sets. Toy world: the evaluation set with its reference renders, and the training stream.


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
