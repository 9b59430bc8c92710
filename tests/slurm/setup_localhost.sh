#!/usr/bin/env bash
# A real single-node Slurm on this machine, for tests/test_slurm.py: munged, slurmctld and slurmd as root, one
# partition `debug`, the node at 127.0.0.1 (the daemons talk over the loopback, though they listen on every interface,
# ports 6817 and 6818, as Slurm's daemons do).
#
#   sudo tests/slurm/setup_localhost.sh          # install (Debian: slurm-wlm, munge), configure, start; wait for idle
#   sudo tests/slurm/setup_localhost.sh --stop   # stop the three daemons it started
#
# Idempotent: with the same configuration and the daemons up it only checks that the node is idle (about a second).
# Written for Debian 12 (Slurm 22.05) in a container: no systemd, no cgroups, hence proctrack/linuxproc (Slurm
# finds a job's processes through their parent ids) and task/none.
set -euo pipefail

CONF_DIR=/etc/slurm
STATE=/var/spool/slurm-localhost
RUN=/run/slurm-localhost
NODE=$(hostname -s)

die() { echo "setup_localhost.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run it as root (it installs packages and starts slurmctld, slurmd and munged)"

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if [ "${1:-}" = "--stop" ]; then
  for pidfile in "$RUN/slurmd.pid" "$RUN/slurmctld.pid" /run/munge/munged.pid; do
    if pid_alive "$pidfile"; then kill "$(cat "$pidfile")"; fi
  done
  exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  command -v apt-get >/dev/null || die "Slurm is not installed and there is no apt-get: install slurm-wlm and munge"
  echo "installing slurm-wlm and munge (apt-get)"
  # Without recommends: the plugin -dev packages and their build chain are not needed to run a job.
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      slurm-wlm munge >/dev/null; } || die "apt-get install slurm-wlm munge failed"
fi

# The node as slurmd sees it (CPUs, sockets, cores, threads, memory), so the two agree and the node is not drained
# for a mismatch; memory 5% below the measured value, which moves a little between boots.
read -r HW < <(slurmd -C | head -n1 | sed -E 's/^NodeName=[^ ]+ //; s/ ?UpTime=.*//')
MEM=$(sed -nE 's/.*RealMemory=([0-9]+).*/\1/p' <<<"$HW")
HW=$(sed -E "s/RealMemory=[0-9]+/RealMemory=$((MEM * 95 / 100))/" <<<"$HW")

mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/d" "$RUN" /var/log/slurm
CONF=$(cat <<EOF
# Written by tests/slurm/setup_localhost.sh: a single-node Slurm on 127.0.0.1 for the tests.
ClusterName=localhost
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job may start again once its old credential has expired: 120 s by default, 20 s here (one machine, the
# launch takes a second), so the tests see the requeued run without a two-minute pause.
AuthInfo=cred_expire=20
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# No cgroups in a container: processes are tracked by parent id, tasks are not confined.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
# What a cancelled or timed-out job gets between SIGTERM and SIGKILL: enough for a sweep to let Tune save its state
# and close its MLflow runs, and for the batch script to stop Ray.
KillWait=120
# Finished jobs stay visible to scontrol this long (the tests read their state and exit code).
MinJobAge=600
NodeName=$NODE NodeAddr=127.0.0.1 $HW State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
)

changed=0
if [ ! -f "$CONF_DIR/slurm.conf" ] || [ "$(cat "$CONF_DIR/slurm.conf")" != "$CONF" ]; then
  printf '%s\n' "$CONF" >"$CONF_DIR/slurm.conf"
  changed=1
fi

# munge: the key the package created (or a new one), and munged running as its own user.
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key
  chmod 600 /etc/munge/munge.key
fi
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! pid_alive /run/munge/munged.pid; then
  runuser -u munge -- /usr/sbin/munged
fi

if [ "$changed" -eq 1 ]; then  # daemons started with another configuration: restart them with this one
  for pidfile in "$RUN/slurmd.pid" "$RUN/slurmctld.pid"; do
    if pid_alive "$pidfile"; then
      pid=$(cat "$pidfile")
      kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    fi
  done
fi
pid_alive "$RUN/slurmctld.pid" || slurmctld
pid_alive "$RUN/slurmd.pid" || slurmd

# Wait for the node: idle (or running a job); a node left down or drained by an earlier configuration is resumed.
for _ in $(seq 120); do
  state=$(sinfo -h -n "$NODE" -o '%t' 2>/dev/null || true)
  case "$state" in
    idle | mix | alloc) echo "slurm on $NODE: $state"; exit 0 ;;
    down* | drain* | drng*) scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true ;;
  esac
  sleep 0.5
done
die "node $NODE is not idle after 60 s (sinfo: ${state:-no answer}); see /var/log/slurm/slurmctld.log and slurmd.log"
