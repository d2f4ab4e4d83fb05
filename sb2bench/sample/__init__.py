"""Sampling images from any system (rules/sample.smk).

Modules: generate (multi-step sampling with CFG, or one step at t = 999, for any system), gather (shard
folders into one image folder with its manifest; standard library only, so ``gather`` jobs import no torch),
cli (the ``sample``, ``sample-sets`` and ``gather`` subcommands).
"""
