"""Input data of the evaluation and training stages (rules/data.smk).

Modules: prompts (JSON Lines prompt sets: the toy sets, HPS style sets, sampling subsets), coco (the
COCO-2014 30K prompt list and 256-px reference set, built from a local folder), download (resumable,
checksum-verified downloads for machines with internet).
"""
