#!/usr/bin/env bash
# Real-cluster check of profiles/slurm (docs/slurm.md): bring up a one-node SLURM on localhost from Debian's
# packages (munge, MariaDB, slurmdbd, slurmctld, slurmd), run the smoke DAG through the profile with the
# documented command, unchanged, in a scratch copy of this checkout; check with sacct that every job went
# through sbatch and finished; compare its tables with a local smoke run's; write reports/bench/slurm_local.md.
# Every daemon it starts runs from $SLURM_LOCAL_DIR (default /tmp/sb2bench-slurm-local) on its own ports, and
# is stopped on exit (trap); a re-run stops a previous run's leftovers first and starts from a clean state.
# Needs root (daemons, apt-get) and Debian/Ubuntu. Not part of the test suite: it takes tens of minutes.
#   sudo bash scripts/slurm_local.sh            # env: SB2BENCH_VENV (default .venv), SLURM_LOCAL_POLL
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${SLURM_LOCAL_DIR:-/tmp/sb2bench-slurm-local}
VENV=${SB2BENCH_VENV:-$REPO/.venv}
# Seconds before the executor's first sacct query of a job (plugin default 40, meant for busy clusters). A
# one-node test cluster polls more often through a site profile ($SNAKEMAKE_PROFILE), so the documented
# command itself stays unchanged. Empty: the plugin's default.
POLL=${SLURM_LOCAL_POLL-10}
PORT_CTLD=16817 PORT_SLURMD=16818 PORT_DBD=16819 PORT_DB=13306
SMOKE_CMD="snakemake --workflow-profile profiles/slurm --configfile config/smoke.yaml"
LOCAL_CMD="snakemake --cores all --configfile config/smoke.yaml"
OUT_MD=$REPO/reports/bench/slurm_local.md

die() { echo "slurm_local: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (it starts munged, mariadbd and the SLURM daemons): sudo bash $0"
[ -x "$VENV/bin/snakemake" ] || die "no snakemake in $VENV (run scripts/setup.sh, or set SB2BENCH_VENV)"
case "$STATE" in /*sb2bench-slurm-local*) ;; *) die "SLURM_LOCAL_DIR=$STATE must be an absolute path containing 'sb2bench-slurm-local' (it is wiped)";; esac

need=()
for cmd in munged mariadbd slurmdbd slurmctld slurmd sbatch sacct; do command -v "$cmd" >/dev/null || need+=("$cmd"); done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages (missing: ${need[*]})"
  # the packages' own services (if the system starts them) use the default ports; this script runs its own
  DEBIAN_FRONTEND=noninteractive apt-get install -y munge slurm-wlm slurmdbd mariadb-server
fi

PIDS=()
stop_pid() {  # stop one process of ours by pid (never by name; "-PID": its process group), politely then firmly
  local pid=$1
  kill -0 -- "$pid" 2>/dev/null || return 0
  kill -- "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 -- "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -9 -- "$pid" 2>/dev/null || true
}
stop_all() {
  local i
  for ((i=${#PIDS[@]}-1; i>=0; i--)); do stop_pid "${PIDS[$i]}"; done
  PIDS=()
  rm -f "$STATE/pids"
  if [ -n "${SLURM_CONF:-}" ] && [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$SLURM_CONF" ]; then
    rm -f /etc/slurm/slurm.conf
  fi
}
trap 'stop_all' EXIT
trap 'exit 130' INT TERM

# leftovers of an earlier run of this script (its pid file lists only daemons it started)
if [ -f "$STATE/pids" ]; then
  while read -r pid; do stop_pid "$pid"; done < <(tac "$STATE/pids")
fi
rm -rf "$STATE"
mkdir -p "$STATE"/{etc,log,run,state,spool,munge,mysql,work}
chmod 700 "$STATE/munge"
start() {  # start a foreground daemon in the background; remember its pid
  local name=$1; shift
  "$@" >> "$STATE/log/$name.out" 2>&1 &
  PIDS+=("$!"); echo "$!" >> "$STATE/pids"
}
wait_for() {  # wait_for SECONDS WHAT COMMAND...
  local t=$1 what=$2; shift 2
  for _ in $(seq "$((t * 2))"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  die "$what did not come up in ${t}s (logs: $STATE/log)"
}

# --- munge on its default socket (SLURM's clients look there): reuse a running munged, else start one with a
# key of its own
MUNGE_SOCK=/run/munge/munge.socket.2
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  echo "using the munged already running on $MUNGE_SOCK"
else
  dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1 count=1024 status=none
  chmod 400 "$STATE/munge/munge.key"
  mkdir -p /run/munge && chmod 755 /run/munge
  start munged munged --foreground --force --key-file="$STATE/munge/munge.key" --socket="$MUNGE_SOCK" \
    --pid-file="$STATE/run/munged.pid" --log-file="$STATE/log/munged.log" --seed-file="$STATE/munge/seed"
  wait_for 20 munged bash -c "munge -n | unmunge"
fi

# --- MariaDB for slurmdbd (own data directory, socket and port)
mariadb-install-db --no-defaults --user=root --datadir="$STATE/mysql" --auth-root-authentication-method=socket \
  > "$STATE/log/mariadb-install.out" 2>&1
DB_SOCK=$STATE/run/mysql.sock
start mariadbd mariadbd --no-defaults --user=root --datadir="$STATE/mysql" --socket="$DB_SOCK" --port=$PORT_DB \
  --bind-address=127.0.0.1 --pid-file="$STATE/run/mariadbd.pid" --log-error="$STATE/log/mariadbd.log"
wait_for 60 mariadbd mariadb --no-defaults -S "$DB_SOCK" -u root -e "select 1"
DB_PASS=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
mariadb --no-defaults -S "$DB_SOCK" -u root -e "
  CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"

# --- SLURM: one node with this machine's real CPUs and memory (slurmd -C), accounting in slurmdbd
HOST=$(hostname -s)
NODE_LINE=$(slurmd -C | head -1)
export SLURM_CONF=$STATE/etc/slurm.conf
cat > "$STATE/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=$PORT_DBD
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$PORT_DB
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
LogFile=$STATE/log/slurmdbd.log
PidFile=$STATE/run/slurmdbd.pid
EOF
chmod 600 "$STATE/etc/slurmdbd.conf"
cat > "$SLURM_CONF" <<EOF
ClusterName=sb2bench
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT_CTLD
SlurmdPort=$PORT_SLURMD
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
# no cgroup in this sandbox: track job processes by parent pid, bind no tasks
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$PORT_DBD
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
$NODE_LINE NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
# Job steps (the plugin's srun inside each job) find slurm.conf at the default path only: link it there while this
# cluster runs, unless the host has a slurm.conf of its own (then this script is the wrong tool).
SYS_CONF=/etc/slurm/slurm.conf
if [ -e "$SYS_CONF" ] || [ -L "$SYS_CONF" ]; then
  [ "$(readlink "$SYS_CONF")" = "$SLURM_CONF" ] || die "$SYS_CONF exists: this host has a SLURM of its own"
fi
mkdir -p /etc/slurm && ln -sfn "$SLURM_CONF" "$SYS_CONF"
start slurmdbd slurmdbd -D
wait_for 60 slurmdbd sacctmgr -n list cluster
sacctmgr -i add cluster sb2bench > /dev/null 2>&1 || true
start slurmctld slurmctld -D -f "$SLURM_CONF"
wait_for 60 slurmctld scontrol ping
start slurmd slurmd -D -f "$SLURM_CONF"
wait_for 60 "node $HOST" bash -c "sinfo -h -N -o %T | grep -qE '^(idle|mixed|allocated)'"
echo "single-node SLURM up: $(sinfo -h -N -o '%N %c CPUs %m MB %T')"

# --- two scratch copies of this checkout (tracked and untracked, not ignored, files): local and SLURM
. "$VENV/bin/activate"
export HF_HUB_OFFLINE=1 MPLBACKEND=Agg
copy_checkout() {
  mkdir -p "$1"
  (cd "$REPO" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$1" 2>/dev/null) || true
}
run_dag() {  # run_dag DIR LOG SECONDS_FILE COMMAND...: runs it, writes its wall seconds to SECONDS_FILE
  local dir=$1 log=$2 secs=$3; shift 3
  local t0; t0=$(date +%s.%N)
  (cd "$dir" && PYTHONPATH=$dir "$@") > "$log" 2>&1 || { tail -40 "$log" >&2; echo "'$*' failed in $dir (log: $log)" >&2; return 1; }
  echo "$(date +%s.%N) - $t0" | bc > "$secs"
}
LOCAL=$STATE/work/local SL=$STATE/work/slurm
copy_checkout "$LOCAL"; copy_checkout "$SL"
# the checkout these copies hold (the summary names it; the checkout may move on while the runs last)
COMMIT=$(cd "$REPO" && git rev-parse --short HEAD)$(cd "$REPO" && git diff --quiet HEAD -- . ':!reports/bench/slurm_local.md' || echo "+uncommitted")

# The local reference run goes beside the SLURM one (in its own process group, stopped on exit): the two share
# the machine's cores, which lengthens both wall times but not what they compute.
echo "local smoke run (beside the SLURM run): $LOCAL_CMD"
# shellcheck disable=SC2086
setsid bash -c "$(declare -f run_dag); run_dag '$LOCAL' '$STATE/log/local_smoke.log' '$STATE/local.seconds' $LOCAL_CMD" &
LOCAL_PID=$!
echo "-$LOCAL_PID" >> "$STATE/pids"
PIDS+=("-$LOCAL_PID")

if [ -n "$POLL" ]; then
  mkdir -p "$STATE/site-profile"
  printf 'slurm-init-seconds-before-status-checks: %s\n' "$POLL" > "$STATE/site-profile/config.yaml"
  export SNAKEMAKE_PROFILE=$STATE/site-profile
fi
START_TS=$(date +%Y-%m-%dT%H:%M:%S)
echo "SLURM smoke run: $SMOKE_CMD"
# shellcheck disable=SC2086
run_dag "$SL" "$STATE/log/slurm_smoke.log" "$STATE/slurm.seconds" $SMOKE_CMD || die "the SLURM smoke run failed"
unset SNAKEMAKE_PROFILE
wait "$LOCAL_PID" || die "the local smoke run failed (log: $STATE/log/local_smoke.log)"
SLURM_S=$(cat "$STATE/slurm.seconds") LOCAL_S=$(cat "$STATE/local.seconds")

# --- checks: every job through sbatch and COMPLETED in sacct; tables equal to the local run's
LOG=$STATE/log/slurm_smoke.log
DAG_JOBS=$(grep -m1 -E '^total +[0-9]+' "$LOG" | awk '{print $2}')
SUBMITTED=$(grep -c 'has been submitted with SLURM jobid' "$LOG" || true)
sacct -X -n -P -S "$START_TS" -E now --format=JobIDRaw,JobName,State,ExitCode,Elapsed,ReqTRES > "$STATE/sacct.txt"
SACCT_JOBS=$(wc -l < "$STATE/sacct.txt")
COMPLETED=$(awk -F'|' '$3 == "COMPLETED"' "$STATE/sacct.txt" | wc -l)
STATES=$(cut -d'|' -f3 "$STATE/sacct.txt" | sort | uniq -c | awk '{printf "%s%s %s", sep, $1, $2; sep=", "}')
# what the jobs asked for (sacct's ReqTRES: cpu, mem, gres/gpu), with how many jobs asked it
TRES=$(cut -d'|' -f6 "$STATE/sacct.txt" | sort | uniq -c | sort -rn | awk '{printf "%s%s x `%s`", sep, $1, $2; sep="; "}')

TABLES=$(cd "$LOCAL" && find reports -path 'reports/bench' -prune -o \( -name 'table*.csv' -o -name 'eval.csv' \) -print | sort)
N_TABLES=0 N_SAME=0 DIFFER=()
for t in $TABLES; do
  N_TABLES=$((N_TABLES + 1))
  if cmp -s "$LOCAL/$t" "$SL/$t"; then N_SAME=$((N_SAME + 1)); else DIFFER+=("$t"); fi
done

ok=yes
[ "$N_TABLES" -gt 0 ] && [ "$N_SAME" = "$N_TABLES" ] || ok=no
[ "$SUBMITTED" -gt 0 ] && [ "$COMPLETED" = "$SUBMITTED" ] && [ "$SACCT_JOBS" = "$SUBMITTED" ] || ok=no

SLURM_V=$(sinfo -V | awk '{print $2}')
MUNGE_V=$(munged -V 2>&1 | head -1 | awk '{print $1}')
DB_V=$(mariadbd --version | awk '{print $3}')
PY_V=$(python - <<'EOF'
from importlib.metadata import version
print(", ".join(f"{d} {version(d)}" for d in ("snakemake", "snakemake-executor-plugin-slurm",
                                              "snakemake-executor-plugin-slurm-jobstep")))
EOF
)
mkdir -p "$(dirname "$OUT_MD")"
TMP=$(mktemp "$OUT_MD.XXXXXX")
{
  echo "# profiles/slurm on a single-node SLURM (scripts/slurm_local.sh)"
  echo
  echo "Written by \`scripts/slurm_local.sh\` on $(date -u +%Y-%m-%dT%H:%MZ), checkout $COMMIT."
  echo
  echo "- **Result: $( [ "$ok" = yes ] && echo "passed" || echo "FAILED")** — the smoke DAG ran through \`profiles/slurm\` with the documented command, unchanged:"
  echo "  \`$SMOKE_CMD\` (no \`--cores\`, no \`--set-resources\`, no \`--workflow-profile none\`)."
  echo "- Cluster: one node, $(sinfo -h -N -o '%c CPUs, %m MB') (\`slurmd -C\`), \`select/cons_tres\`, \`proctrack/linuxproc\`, \`task/none\`, accounting in slurmdbd on MariaDB."
  echo "- Versions: SLURM $SLURM_V, munge $MUNGE_V, MariaDB $DB_V; $PY_V; Python $(python -c 'import platform; print(platform.python_version())')."
  echo "- Jobs: $DAG_JOBS in the DAG; $SUBMITTED submitted through \`sbatch\`; sacct lists $SACCT_JOBS: $STATES."
  echo "- Wall time on this machine ($(nproc) cores, shared with other work; the local run went beside the SLURM run): SLURM run $(printf '%.1f' "$(echo "$SLURM_S / 60" | bc -l)") min; local run (\`$LOCAL_CMD\`) $(printf '%.1f' "$(echo "$LOCAL_S / 60" | bc -l)") min.${POLL:+ First status query ${POLL} s after a submission (site profile; plugin default: 40 s).}"
  echo "- Tables: $N_SAME of $N_TABLES (\`reports/**/table*.csv\`, \`eval.csv\`) byte-identical to the local run's.${DIFFER[*]:+ Differ: ${DIFFER[*]}.}"
  echo "- Requested (sacct ReqTRES; no job asks for a GPU in the toy world): $TRES."
  echo
  echo "| table | identical |"
  echo "|---|---|"
  for t in $TABLES; do
    if cmp -s "$LOCAL/$t" "$SL/$t"; then echo "| \`$t\` | yes |"; else echo "| \`$t\` | **no** |"; fi
  done
} > "$TMP"
chmod 644 "$TMP" && mv "$TMP" "$OUT_MD"
echo "wrote $OUT_MD (result: $ok)"
[ "$ok" = yes ] || die "check failed: see $OUT_MD and $STATE/log"
