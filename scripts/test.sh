#!/usr/bin/env bash
# The whole test suite. Installs what the tests need on a fresh machine, then
# runs every test. Used by CI (.ci/run) and by people alike.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
# remote_write is proven against a real VictoriaMetrics (and Prometheus, above).
command -v victoria-metrics >/dev/null 2>&1 || need_apt+=(victoria-metrics)
# The evidence report's HTML is checked in headless Chromium, and browser
# journeys run in it (tests/integration/browser.rs).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# The PDF board pack is read back with poppler-utils (tests/integration/report_pdf.rs).
command -v pdftotext >/dev/null 2>&1 || need_apt+=(poppler-utils)
# The generated promtool scenarios and dashboards are checked with python3.
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# The report's peak memory is read with GNU time (tests/integration/report_scale.rs).
[ -x /usr/bin/time ] || need_apt+=(time)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "missing: ${need_apt[*]} (run as root, or: sudo apt-get install -y ${need_apt[*]})" >&2
  fi
fi

# The book in docs/ is built, and its links checked, by tests/integration/docs.rs.
# mdBook from crates.io, pinned; skipped when that version is already on PATH.
# Without its default features (serve, watch) it builds in about 3 CPU-minutes.
MDBOOK_VERSION=0.5.4
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if [ "$(mdbook --version 2>/dev/null || true)" != "mdbook v$MDBOOK_VERSION" ]; then
  echo "installing: mdbook $MDBOOK_VERSION (cargo install)"
  env -u CARGO_TARGET_DIR cargo install mdbook --locked --quiet --version "$MDBOOK_VERSION" \
    --no-default-features --features search
fi

cargo test --locked --all-targets

# A CI-length soak: memory, descriptors and tasks must not grow.
bash scripts/soak.sh 180 "${TMPDIR:-/tmp}/casewatch-soak.csv"
