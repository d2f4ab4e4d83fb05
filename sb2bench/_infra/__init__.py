"""Infrastructure every stage shares; no stage logic here.

Modules: atomic (write-then-rename, so a killed job never leaves a finished-looking file), hashing
(content hashes for cache keys and weight fingerprints), provenance (what every result file records
about how it was made), gpu_slots (one lock file per local GPU for the life of a job), warm (the warm
interpreter that forks DAG jobs from a process that already imported torch), torchvision_compat (makes
``import torchvision`` work on CPU-only torch), device (what "auto" means for a job's device and dtype,
and the checks of a request), progress (rate-limited progress lines with rate and ETA
for the logs of long jobs), cli_args (the JSON argument type and the runtime flags --batch-size,
--threads, --device, --dtype that stages' subcommands share), cli (the ``gpu-run`` subcommand).
"""
