# The toy hub: every toy model trained from scratch, saved in the real formats.
# `snakemake --cores all toy_hub --config toy='{hub: retrain}'` retrains it into results/toy/hub;
# `snakemake --cores all ship_toy_hub --config toy='{hub: retrain}'` then copies it into the package.


rule toy_train_component:
    input:
        hub_component_dependencies,
    output:
        directory(f"{TOY_HUB}/{{hubfolder}}"),
    params:
        hub=output_parent,
        cache=TOY_CACHE,
        component=hub_component,
        training=hub_component_params,
    threads: hub_component_threads
    conda:
        CONDA_ENV
    log:
        "logs/toy/hub/{hubfolder}.log",
    benchmark:
        "benchmarks/toy/hub/{hubfolder}.tsv"
    shell:
        "sb2bench toy-train {params.component} --hub {params.hub} --cache {params.cache} "
        "--params {params.training:q} > {log} 2>&1"


rule toy_hub:
    input:
        [f"{TOY_HUB}/{folder}" for folder in HUB_FOLDERS.values()],
    output:
        f"{TOY_HUB}/PROVENANCE.md",
    params:
        hub=output_parent,
    conda:
        CONDA_ENV
    log:
        "logs/toy/hub/provenance.log",
    shell:
        "sb2bench hub-provenance --hub {params.hub} --out {output} > {log} 2>&1"


rule ship_toy_hub:
    input:
        f"{TOY_HUB}/PROVENANCE.md",
    output:
        "sb2bench/toyworld/hub/PROVENANCE.md",
    params:
        hub=input_parent,
        dest=output_parent,
    conda:
        CONDA_ENV
    log:
        "logs/toy/hub/ship.log",
    shell:
        "sb2bench hub-ship --hub {params.hub} --dest {params.dest} > {log} 2>&1"
