"""Sampling images from any system (rules/sample.smk).

Modules: generate (multi-step sampling with CFG, or one step at t = 999, for any system), cli (the
``sample``, ``sample-sets`` and ``gather`` subcommands).
"""
