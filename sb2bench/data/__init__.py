"""Input data of the evaluation and training stages (rules/data.smk).

Modules: prompts (JSON Lines prompt sets: the toy sets, HPS style sets, sampling subsets), coco (the
COCO-2014 30K prompt list and 256-px reference set, built from a local folder), download (resumable,
checksum-verified downloads for machines with internet), prompt_sources (training prompt files built
from JourneyDB annotations and LAION caption parquet files, with a manifest), dataset_json (SBv2's
official COCO prompt list, pinned by commit and SHA-256), cli (prompts-build, dataset-json, prompts-head,
coco-prompts, coco-reference, coco-download, protocol-resize).
"""
