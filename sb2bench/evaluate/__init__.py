"""Scoring systems (rules/evaluate.smk, rules/timing.smk).

Modules: protocol (named, versioned evaluation protocols that pin every choice), score (one system's
images scored under a protocol: FID, KID, precision/recall, CLIP score, attribute accuracy), metrics/
(the metric implementations), hps_benchmark (the HPSv2 benchmark's four style sets and their scores),
timing (inference time per image under SBv2's Table 8 protocol), cli (the ``attributes``, ``evaluate``,
``hps-prompts``, ``hps-evaluate``, ``timing`` and ``report-timing`` subcommands).
"""
