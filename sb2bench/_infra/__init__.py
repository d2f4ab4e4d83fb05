"""Infrastructure shared by every stage (no science here).

Module map:
  progress  rate-limited progress lines with rate and ETA for the logs of long jobs
"""
