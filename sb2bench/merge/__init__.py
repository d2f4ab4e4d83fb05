"""Merging two students by weight interpolation (rules/merge.smk).

Modules: interpolate (θ = λ·θ_A + (1 − λ)·θ_B, SBv2 Eq. 6, with a LoRA student fused into its base
first by ``sb2bench.models.lora``), cli (the ``merge`` subcommand).
"""
