#!/usr/bin/env bash
# Builds the Debian package from the release build and checks it as far as a
# machine without systemd as PID 1 can (CI runs it from .ci/run, as root):
#
#   1. the release binary is at most 35 MB;
#   2. cargo-deb builds the .deb, with the files packaging/README.md lists;
#   3. dpkg -i installs it: the casewatch user, /var/lib/casewatch, the
#      config as a conffile;
#   4. systemd-analyze verify accepts the installed unit;
#   5. check-config passes on the installed config, as root and as the
#      service user;
#   6. the service's command runs under the unit's sandbox, as far as a mount
#      namespace shows it (read-only root, private /tmp, the state directory
#      writable, no home, no new privileges, the casewatch user): it serves
#      /metrics and writes its journal in /var/lib/casewatch;
#   7. in the same sandbox, a browser journey starts Chromium (when it is
#      installed) and runs against the simulator;
#   8. dpkg -r keeps the journal; dpkg -P deletes it.
#
#   scripts/package-check.sh          # needs root; installs what it needs
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
MAX_BYTES=$((35 * 1024 * 1024))
WORK=$(mktemp -d /tmp/casewatch-package.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

step() { echo "== package-check: $*"; }
fail() { echo "package-check: FAILED: $*" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then
    echo "package-check: needs root (dpkg -i, a system user, mount namespaces)" >&2
    exit 2
fi

need_apt=()
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
command -v adduser >/dev/null 2>&1 || need_apt+=(adduser)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
if [ ${#need_apt[@]} -gt 0 ]; then
    step "installing ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
if ! command -v cargo-deb >/dev/null 2>&1; then
    step "installing cargo-deb"
    cargo install cargo-deb --version 3.8.0 --locked --quiet
fi

step "release build (reused when the test run built it)"
cargo build --release --locked --quiet --bin casewatch
bytes=$(stat -c %s "$TARGET/release/casewatch")
echo "   target/release/casewatch: $bytes bytes ($((bytes / 1024 / 1024)) MiB; limit 35 MiB)"
[ "$bytes" -le "$MAX_BYTES" ] || fail "the release binary is $bytes bytes, over 35 MiB"

step "cargo deb"
cargo deb --no-build --output "$WORK/deb/" >/dev/null
deb=$(ls "$WORK"/deb/casewatch_*.deb)
echo "   $(basename "$deb"): $(stat -c %s "$deb") bytes"
dpkg-deb --contents "$deb" >"$WORK/contents.txt"
grep -Eq " \./(usr/)?lib/systemd/system/casewatch\.service\$" "$WORK/contents.txt" \
    || fail "the package has no casewatch.service"
for path in ./usr/bin/casewatch \
    ./etc/casewatch/casewatch.yaml ./etc/casewatch/casewatch.env \
    ./usr/share/casewatch/dashboards/casewatch-fleet.json \
    ./usr/share/casewatch/alerts/casewatch.alerts.yml ./usr/share/casewatch/RUNBOOK.md \
    ./usr/share/doc/casewatch/README.Debian ./usr/share/doc/casewatch/book/configuration.md; do
    grep -q " $path\$" "$WORK/contents.txt" || fail "the package has no $path"
done
if grep -q "casewatch-bench" "$WORK/contents.txt"; then fail "the package carries the benchmark tools"; fi
dpkg-deb --field "$deb" Recommends | grep -qw chromium || fail "the package does not recommend chromium"
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles >"$WORK/conffiles"
for conf in /etc/casewatch/casewatch.yaml /etc/casewatch/casewatch.env; do
    grep -qx "$conf" "$WORK/conffiles" || fail "$conf is not a conffile"
done

# A previous run on this machine may have left it installed.
if dpkg -s casewatch >/dev/null 2>&1; then dpkg -P casewatch >/dev/null; fi

step "dpkg -i"
dpkg -i "$deb" >/dev/null
id casewatch >/dev/null || fail "no casewatch user"
[ "$(stat -c %U:%a /var/lib/casewatch)" = "casewatch:750" ] || fail "/var/lib/casewatch is $(stat -c %U:%a /var/lib/casewatch)"
[ "$(stat -c %U:%G:%a /etc/casewatch/casewatch.env)" = "root:root:600" ] || fail "casewatch.env is not root's only"

step "systemd-analyze verify"
unit=$(dpkg -L casewatch | grep '/casewatch.service$')
# --man=no: no man page to look up. It loads the unit as systemd would
# (every directive, the executables it names, the user) without a running
# systemd.
out=$(systemd-analyze verify --man=no "$unit" 2>&1) || { echo "$out"; fail "systemd-analyze verify $unit"; }
if [ -n "$out" ]; then echo "$out"; fail "systemd-analyze verify printed warnings"; fi
echo "   $unit: no findings"

step "check-config on the installed config"
/usr/bin/casewatch check-config /etc/casewatch/casewatch.yaml
as_service() { setpriv --reuid=casewatch --regid=casewatch --init-groups --no-new-privs "$@"; }
as_service /usr/bin/casewatch check-config /etc/casewatch/casewatch.yaml >/dev/null \
    || fail "check-config fails as the service user"

# The unit's sandbox, as far as a mount namespace shows it: the state
# directory writable (bound first, so it stays writable), then the root
# read-only (ProtectSystem=strict), a private /tmp (PrivateTmp), no homes
# (ProtectHome), then the casewatch user with no new privileges and no
# capabilities, HOME in the state directory, as the unit sets.
SANDBOXED=$WORK/sandboxed
cat >"$SANDBOXED" <<'SH'
#!/bin/sh
# sandboxed COMMAND...: COMMAND as the unit runs it (see package-check.sh).
# Every step execs the next, so this process becomes COMMAND: its pid is
# the one to signal.
exec unshare --mount --propagation private -- sh -c '
    set -e
    mount --bind /var/lib/casewatch /var/lib/casewatch
    mount -o remount,bind,ro /
    mount -t tmpfs -o mode=1777 tmpfs /tmp
    for home in /home /root; do mount -t tmpfs -o mode=0700 tmpfs "$home"; done
    cd /var/lib/casewatch
    exec setpriv --reuid=casewatch --regid=casewatch --init-groups --no-new-privs \
        --inh-caps=-all --bounding-set=-all env HOME=/var/lib/casewatch "$@"
' sandboxed "$@"
SH
chmod 0755 "$SANDBOXED"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

step "the service's command in the unit's sandbox"
port=$(free_port)
"$SANDBOXED" /usr/bin/casewatch run --config /etc/casewatch/casewatch.yaml --listen "127.0.0.1:$port" \
    >"$WORK/run.out" 2>"$WORK/run.err" &
run_pid=$!
PIDS+=("$run_pid")
scraped=
for _ in $(seq 1 60); do
    if curl -fsS "http://127.0.0.1:$port/metrics" >"$WORK/metrics.txt" 2>/dev/null \
        && grep -q '^casewatch_journey_runs_total{.*journey="login_page"' "$WORK/metrics.txt"; then
        scraped=1
        break
    fi
    sleep 0.5
done
[ -n "$scraped" ] || { cat "$WORK/run.err" >&2; fail "no /metrics from the sandboxed service"; }
sleep 2
kill -TERM "$run_pid"
wait "$run_pid" || { cat "$WORK/run.err" >&2; fail "the sandboxed service did not stop cleanly"; }
[ "$(stat -c %U /var/lib/casewatch/journal.db)" = casewatch ] || fail "no journal written by casewatch in /var/lib/casewatch"
echo "   served /metrics on 127.0.0.1:$port; journal $(stat -c %s /var/lib/casewatch/journal.db) bytes in /var/lib/casewatch"

if command -v chromium >/dev/null 2>&1; then
    step "a browser journey starts Chromium in the unit's sandbox"
    ics=$(free_port)
    css=$(free_port)
    export CASEWATCH_PASSWORD=package-check-password
    /usr/bin/casewatch sim --ics-listen "127.0.0.1:$ics" --css-listen "127.0.0.1:$css" \
        >"$WORK/sim.out" 2>"$WORK/sim.err" &
    PIDS+=("$!")
    # In the state directory: the sandbox has its own /tmp.
    browser_config=/var/lib/casewatch/browser-check.yaml
    sed -e "s#http://127.0.0.1:8181/#http://127.0.0.1:$ics/#" -e "s#http://127.0.0.1:8182/#http://127.0.0.1:$css/#" \
        config/demo.yaml >"$browser_config"
    chown casewatch:casewatch "$browser_config"
    for _ in $(seq 1 40); do curl -fsS "http://127.0.0.1:$ics/ping" >/dev/null 2>&1 && break; sleep 0.25; done
    if ! "$SANDBOXED" env CASEWATCH_PASSWORD="$CASEWATCH_PASSWORD" /usr/bin/casewatch once \
        --config "$browser_config" --journey case_note_browser >"$WORK/once.out" 2>"$WORK/once.err"; then
        cat "$WORK/once.out" "$WORK/once.err" >&2
        fail "the browser journey failed in the sandbox"
    fi
    grep -m1 '^journey case_note_browser' "$WORK/once.out" | sed 's/^/   /'
else
    step "chromium is not installed: the browser check is left out (apt-get install chromium)"
fi

step "dpkg -r keeps the journal"
dpkg -r casewatch >/dev/null
[ ! -e /usr/bin/casewatch ] || fail "/usr/bin/casewatch is still there"
[ -f /var/lib/casewatch/journal.db ] || fail "the journal did not survive dpkg -r"
[ -f /etc/casewatch/casewatch.yaml ] || fail "the config did not survive dpkg -r"

step "dpkg -P deletes it"
dpkg -P casewatch >/dev/null
[ ! -e /var/lib/casewatch ] || fail "/var/lib/casewatch survived dpkg -P"
[ ! -e /etc/casewatch ] || fail "/etc/casewatch survived dpkg -P"

echo "package-check: all good"
