#!/usr/bin/env bash
# Starts a real Slurm on this machine with N fake nodes fn1..fnN: munged on a socket in DIR,
# slurmctld, and one `slurmd -N fnI` per node, all on 127.0.0.1 with their own ports, every
# file under DIR. Waits until all N nodes are idle. Needs root and Debian's slurmctld, slurmd,
# slurm-client and munge. Clients then need: export SLURM_CONF=DIR/slurm.conf
# On any failure it stops what it started (tests/slurm/stop.sh DIR) and exits non-zero.
# Ports: PORT_BASE (default: chosen from this shell's PID, so parallel runs rarely collide).
set -euo pipefail
N=${1:?usage: start.sh N DIR}
D=${2:?usage: start.sh N DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
case "$N" in ''|*[!0-9]*) echo "start.sh: N must be a number" >&2; exit 2 ;; esac
BASE=${PORT_BASE:-$((20000 + ($$ % 300) * 100))}
trap '"$HERE/stop.sh" "$D"' ERR
rm -rf "$D"
mkdir -p "$D"/{state,spool,log,run,sock,munge}
chmod 755 "$D" "$D/sock"
mungekey --create --keyfile="$D/munge/munge.key" >/dev/null 2>&1 || \
  dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 2>/dev/null
chmod 600 "$D/munge/munge.key"
munged --key-file="$D/munge/munge.key" --socket="$D/sock/munge.sock" --pid-file="$D/run/munged.pid" \
  --log-file="$D/log/munged.log" --seed-file="$D/munge/seed" --force
HOST=$(hostname)
cat > "$D/slurm.conf" <<CONF
ClusterName=nccltune-ci
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$BASE
SlurmdPort=$((BASE + 1))
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$D/sock/munge.sock
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool/%n
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd-%n.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
MailProg=/bin/true
NodeName=fn[1-$N] NodeHostname=$HOST NodeAddr=127.0.0.1 Port=[$((BASE + 2))-$((BASE + 1 + N))] CPUs=1 State=UNKNOWN
PartitionName=debug Nodes=fn[1-$N] Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
export SLURM_CONF="$D/slurm.conf"
slurmctld
for n in $(seq 1 "$N"); do mkdir -p "$D/spool/fn$n"; slurmd -N "fn$n"; done
for _ in $(seq 1 240); do
  idle=$(sinfo -h -t idle -o '%D' 2>/dev/null | awk '{s+=$1} END{print s+0}')
  [ "$idle" = "$N" ] && exit 0
  sleep 0.25
done
echo "start.sh: timeout waiting for $N idle nodes (logs in $D/log)" >&2
"$HERE/stop.sh" "$D"
exit 1
