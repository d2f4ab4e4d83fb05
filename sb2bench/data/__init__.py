"""Input data of the real world, built into the project's formats.

Module map:
  prompt_sources  JourneyDB annotations and LAION caption parquet files -> training prompt JSONL + manifest
  dataset_json    SBv2's official COCO prompt list (dataset.json), pinned by commit and SHA-256
"""
