"""Planning: what the config asks for, checked before any job runs.

Module map (the layout of issue 14; modules move here as it lands):
- ``pairing``: which systems were scored on the same prompts and noise, so a claim can pair them.
"""
