#!/usr/bin/env bash
# Adds up what `make test` ran (cargo test, API fuzz and Playwright logs) into one closing line.
set -euo pipefail
dir=${1:?log folder}
strip() { sed 's/\x1b\[[0-9;]*m//g' "$1"; }
cargo_passed=$(strip "$dir/cargo-test.log" | awk '/^test result:/ {for (i=1;i<=NF;i++) if ($(i+1) ~ /^passed;?/) s+=$i} END {print s+0}')
cargo_failed=$(strip "$dir/cargo-test.log" | awk '/^test result:/ {for (i=1;i<=NF;i++) if ($(i+1) ~ /^failed;?/) s+=$i} END {print s+0}')
pw_passed=$(strip "$dir/playwright.log" | awk '/^ *[0-9]+ passed/ {s+=$1} END {print s+0}')
pw_failed=$(strip "$dir/playwright.log" | awk '/^ *[0-9]+ failed/ {s+=$1} END {print s+0}')
fuzz_cases=$(strip "$dir/fuzz.log" | grep -oE '[0-9]+ generated,' | awk '{s+=$1} END {print s+0}')
fuzz_failed=0
strip "$dir/fuzz.log" | grep -q "fuzz-api: no failures" || fuzz_failed=1
echo "cargo test: $cargo_passed passed, $cargo_failed failed; browser: $pw_passed passed, $pw_failed failed; API fuzz: $fuzz_cases cases, $([ $fuzz_failed = 0 ] && echo 'no failures' || echo FAILED)"
total_passed=$((cargo_passed + pw_passed))
total_failed=$((cargo_failed + pw_failed + fuzz_failed))
if [ "$total_passed" -eq 0 ]; then echo "no test ran" >&2; exit 1; fi
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
