#!/usr/bin/env bash
# Runs each cargo-fuzz target (fuzz/fuzz_targets) for a bounded time.
# Not part of CI: fuzzing is slow and its findings need a person.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     # default: 60 s, every target
#
# Installs cargo-fuzz when missing. cargo-fuzz needs a nightly compiler: it
# uses the nightly toolchain when rustup has one, else the stable compiler
# with RUSTC_BOOTSTRAP=1 (enough for libFuzzer builds). Crashes land in
# fuzz/artifacts/<target>/; the corpus grows in fuzz/corpus/<target>/.
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=(config_load extract)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz
fi

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    echo "fuzz.sh: no nightly toolchain; using stable with RUSTC_BOOTSTRAP=1" >&2
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi

seeds_for() {
    case "$1" in
        config_load) echo "config tests/fixtures tests/fixtures/bad" ;;
        extract) echo "fuzz/seeds/extract" ;;
        *) echo "" ;;
    esac
}

failed=()
for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    log="fuzz/$target.log"
    echo "== $target for ${seconds}s (log: $log)"
    # shellcheck disable=SC2046
    if "${fuzz[@]}" run "$target" "$corpus" $(seeds_for "$target") -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed+=("$target")
    fi
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo '?')
    echo "$target: $status, $runs executions in ${seconds}s, corpus $(find "$corpus" -type f | wc -l) inputs"
    if [ "$status" = FAILED ]; then
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -n 8 || true
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "crashes in: ${failed[*]} (see fuzz/artifacts/)" >&2
    exit 1
fi
