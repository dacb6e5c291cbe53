#!/usr/bin/env bash
# Runs each fuzz target (fuzz/fuzz_targets) under libFuzzer for a bounded time.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     # default: 60 s, every target
#
# CI (.ci/run) runs `config_load` for 60 s, seeded with the configs the agent
# once died or lied on (fuzz/seeds/config_load: ten thousand nested
# sequences, a NUL in a comment, a byte-order mark) and every config and
# fixture in the repository.
#
# It needs no nightly compiler and no cargo-fuzz: the targets are ordinary
# binaries linked with libFuzzer (the libfuzzer-sys crate builds it with the
# C++ compiler), and the stable compiler instruments them for coverage with
# LLVM's SanitizerCoverage (`-C passes=sancov-module` and `-C llvm-args`, all
# stable options). What this leaves out is AddressSanitizer, which needs an
# unstable flag; the code under test is safe Rust, and panics, aborts (a
# stack overflow among them), timeouts and runaway memory are all caught.
# Crashes land in fuzz/artifacts/<target>/; the corpus grows in
# fuzz/corpus/<target>/ (both ignored by git).
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=(config_load extract)
fi

host=$(rustc -vV | sed -n 's/^host: //p')
# --target keeps the instrumentation off build scripts and proc macros.
export RUSTFLAGS="-C passes=sancov-module \
 -C llvm-args=-sanitizer-coverage-level=4 \
 -C llvm-args=-sanitizer-coverage-inline-8bit-counters \
 -C llvm-args=-sanitizer-coverage-pc-table \
 -C llvm-args=-sanitizer-coverage-trace-compares \
 --cfg fuzzing -C debug-assertions -C overflow-checks"
echo "== building fuzz targets (release, coverage-instrumented, $host)"
cargo build --quiet --release --manifest-path fuzz/Cargo.toml --target "$host" \
    $(printf -- '--bin %s ' "${targets[@]}")

seeds_for() {
    case "$1" in
        config_load) echo "fuzz/seeds/config_load config tests/fixtures" ;;
        extract) echo "fuzz/seeds/extract" ;;
        *) echo "" ;;
    esac
}

failed=()
for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    artifacts="fuzz/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    log="fuzz/$target.log"
    echo "== $target for ${seconds}s (log: $log)"
    # shellcheck disable=SC2046
    if "fuzz/target/$host/release/$target" "$corpus" $(seeds_for "$target") \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed+=("$target")
    fi
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo '?')
    echo "$target: $status, $runs executions in ${seconds}s, corpus $(find "$corpus" -type f | wc -l) inputs"
    if [ "$status" = FAILED ]; then
        grep -E 'panicked at|overflowed|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -n 8 || true
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "crashes in: ${failed[*]} (see fuzz/artifacts/)" >&2
    exit 1
fi
