#!/usr/bin/env bash
# A one-node Slurm on this machine, for kanbench's integration tests (make test-slurm).
#
#   scripts/slurm-local.sh start DIR   install slurm-wlm + munge if missing (needs root and
#                                      Debian's apt), write DIR/slurm.conf for this machine
#                                      (partitions "cpu" and "cpu2" on the same node),
#                                      start munged, slurmctld and slurmd, wait until the
#                                      node is idle; prints "export SLURM_CONF=DIR/slurm.conf"
#   scripts/slurm-local.sh stop DIR    stop exactly the daemons that `start DIR` started
#
# Exit status 3 (with one line on stderr) when Slurm cannot be started here: not root,
# no apt-get, or the daemons do not come up.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [[ -z "$cmd" || -z "$dir" ]]; then
    echo "usage: $0 start|stop DIR" >&2
    exit 2
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

cannot() { echo "slurm-local: $*" >&2; exit 3; }

stop() {
    for name in slurmd slurmctld munged; do
        pidfile="$dir/$name.pid"
        if [[ -f "$pidfile" ]]; then
            pid=$(cat "$pidfile")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
            rm -f "$pidfile"
        fi
    done
}

if [[ "$cmd" == stop ]]; then
    stop
    exit 0
fi
[[ "$cmd" == start ]] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    [[ $(id -u) -eq 0 ]] || cannot "slurm-wlm and munge are not installed and this is not root"
    command -v apt-get >/dev/null || cannot "slurm-wlm and munge are not installed and there is no apt-get"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq slurm-wlm munge >/dev/null; } \
        || cannot "apt-get install slurm-wlm munge failed"
fi
[[ $(id -u) -eq 0 ]] || cannot "the local Slurm runs its daemons as root; this is not root"

host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
mkdir -p "$dir/state" "$dir/spool" "$dir/munge" "$dir/log"

# munge: a key of our own and a socket in DIR, so a system munged is left alone
if [[ ! -f "$dir/munge/munge.key" ]]; then
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
fi
chmod 700 "$dir/munge"
chmod 400 "$dir/munge/munge.key"
socket="$dir/munge/munge.socket"

cat > "$dir/slurm.conf" <<EOF
ClusterName=kanbench-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=$(( 16817 ))
SlurmdPort=$(( 16818 ))
SchedulerType=sched/backfill
KillWait=5
MinJobAge=600
InactiveLimit=0
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
PartitionName=cpu2 Nodes=$host Default=NO MaxTime=INFINITE State=UP OverSubscribe=YES
EOF

stop  # a previous start in the same DIR
export SLURM_CONF="$dir/slurm.conf"
munged --key-file="$dir/munge/munge.key" --socket="$socket" --pid-file="$dir/munged.pid" \
    --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munge.seed" --force \
    || cannot "munged did not start (see $dir/log/munged.log)"
slurmctld -f "$SLURM_CONF" || cannot "slurmctld did not start (see $dir/log/slurmctld.log)"
slurmd -f "$SLURM_CONF" || cannot "slurmd did not start (see $dir/log/slurmd.log)"

for _ in $(seq 100); do
    if sinfo -h -o "%t" 2>/dev/null | grep -q -E '^(idle|mix)'; then
        echo "export SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
    sleep 0.3
done
state=$(sinfo -h -o "%t %E" 2>&1 | head -1)
stop
cannot "the node did not become idle within 30 s (sinfo: ${state:-nothing}); logs in $dir/log"
