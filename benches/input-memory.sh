#!/usr/bin/env bash
# Peak memory (max RSS, from /usr/bin/time -v) of nccltune on hostile inputs that must end in
# a clear error: /dev/zero, a 2 GB one-line file (as a file and as a stream) and a 230 MB
# nccl.conf. Each must exit 2 with a short message and stay under 100 MB.
# Usage: benches/input-memory.sh [path/to/nccltune]   (default: target/release/nccltune)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/nccltune}
[ -x "$bin" ] || cargo build --release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A sparse 2 GB file: one line of NUL bytes, no disk used.
truncate -s 2G "$work/one-line-2g.txt"
# 230 MB of valid nccl.conf lines.
yes NCCL_DEBUG=INFO | head -c 230M > "$work/nccl.conf" || true
fail=0
run() {
  local label=$1; shift
  local out rss code
  set +e
  out=$( { /usr/bin/time -v "$@" > /dev/null 2> "$work/err"; } 2>&1 )
  code=$?
  set -e
  rss=$(grep -o 'Maximum resident set size (kbytes): [0-9]*' "$work/err" | grep -o '[0-9]*$')
  local msg
  msg=$(grep '^nccltune: error' "$work/err" | head -c 160)
  printf '%-34s exit %s  peak %6d KiB  %s\n' "$label" "$code" "$rss" "$msg"
  if [ "$code" -ne 2 ] || [ "$rss" -gt 102400 ]; then fail=1; fi
}
fix=fixtures/nodes/h100-8gpu-ndr400
run "lint /dev/zero" "$bin" lint /dev/zero
run "configure --rules /dev/zero" "$bin" configure --replay "$fix" --rules /dev/zero
run "lint 2 GB one-line file" "$bin" lint "$work/one-line-2g.txt"
run "lint 2 GB one-line stream (pipe)" bash -c "head -c 2G /dev/zero | tr '\\0' x | '$bin' lint /dev/stdin"
run "lint 230 MB nccl.conf" "$bin" lint "$work/nccl.conf"
run "verify --expect 2 GB file" "$bin" verify --replay "$fix" --expect "$work/one-line-2g.txt"
exit $fail
