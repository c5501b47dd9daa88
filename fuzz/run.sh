#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECS seconds each (default 60), seeded from
# every fixture folder of the repo. New inputs go to fuzz/corpus/<target>; crashes to
# fuzz/artifacts/<target>. Hand-written seeds for a target go in fuzz/seeds/<target>.
# Usage: fuzz/run.sh [SECS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"/\1/p' fuzz/Cargo.toml | grep -v '^nccltune-fuzz$')
fi
mapfile -t seeds < <(find fixtures -type d -mindepth 1)
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  echo "== $t (${secs}s)"
  # Safe Rust needs no sanitizer; RUSTC_BOOTSTRAP lets the stable toolchain take cargo-fuzz's flags.
  # fuzz/seeds/<target>: hand-written hostile cases (read-only; libFuzzer writes only to the first folder).
  extra=()
  [ -d "fuzz/seeds/$t" ] && extra=("fuzz/seeds/$t")
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" -s none "fuzz/corpus/$t" "${extra[@]}" "${seeds[@]}" -- \
    -max_total_time="$secs" -max_len=65536 2>&1 | grep -E '^(Done|==|INFO: Seed|SUMMARY|.*panicked)' || true
  if compgen -G "fuzz/artifacts/$t/crash-*" > /dev/null; then
    echo "crash found: see fuzz/artifacts/$t" >&2
    exit 1
  fi
done
