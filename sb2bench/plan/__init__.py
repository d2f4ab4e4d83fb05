"""Planning before launch: what a config will run, on how many processes, at what cost, with which weights.

Modules:
  batch    the global batch of every training run: processes x batch_size x accumulation (checked at parse time)
  weights  every model a config names resolved offline; all missing pieces listed with their download commands
  cost     ``sb2bench plan``: GPU-hours and disk of each training, sampling and scoring job, with totals
"""
