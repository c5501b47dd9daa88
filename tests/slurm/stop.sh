#!/usr/bin/env bash
# Stops what start.sh DIR started, each daemon by its PID file, and waits for them to exit.
D=${1:?usage: stop.sh DIR}
pids=()
for f in "$D"/run/slurmd-*.pid "$D"/run/slurmctld.pid "$D"/run/munged.pid; do
  [ -f "$f" ] || continue
  p=$(cat "$f" 2>/dev/null) || continue
  case "$p" in ''|*[!0-9]*) continue ;; esac
  kill "$p" 2>/dev/null && pids+=("$p")
done
for _ in $(seq 1 40); do
  alive=0
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ "$alive" = 0 ] && break
  sleep 0.25
done
for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
true
