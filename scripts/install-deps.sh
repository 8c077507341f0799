#!/usr/bin/env bash
# Installs the Debian 12 packages usher needs to build, test and run its demo,
# and any package named as an argument (`make bench-node` adds nodejs).
# Idempotent: only packages that are missing are installed; nothing is downloaded
# from anywhere but the configured Debian mirrors, and the npm registry for the
# console tests' pinned puppeteer-core.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git ca-certificates
  libboost1.81-dev libssl-dev
  libsqlite3-dev sqlite3
  libyaml-cpp-dev nlohmann-json3-dev
  libcli11-dev libspdlog-dev libfmt-dev
  librdkafka-dev kcat
  libpq-dev postgresql-15    # the PostgreSQL store; tests start throwaway clusters
  doctest-dev json-schema-test-suite
  curl procps
  clang libclang-rt-14-dev   # make fuzz: libFuzzer with ASan/UBSan
  libjemalloc-dev            # the allocator `usher` and `usher-bench` link
  prometheus                 # promtool: the tests check /metrics and deploy/prometheus/usher-alerts.yml with it
  chromium nodejs            # the console's browser tests (tests/console): headless chromium driven by puppeteer-core
  "$@"
)
# Debian's nodejs comes without npm; NodeSource's carries its own and conflicts
# with Debian's npm package: ask for it only when there is no npm yet.
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
else
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "install-deps: missing packages (${missing[*]}) and neither root nor sudo is available" >&2
    exit 1
  fi

  echo "install-deps: installing ${missing[*]}"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# puppeteer-core for tests/console, exactly as its package-lock.json pins it,
# from the npm registry; it never downloads a browser (the tests use Debian's
# chromium). Installed again only when the lock file is newer than the install.
console_tests="$(dirname "$0")/../tests/console"
if [ ! -d "$console_tests/node_modules" ] ||
   [ "$console_tests/package-lock.json" -nt "$console_tests/node_modules/.package-lock.json" ]; then
  echo "install-deps: npm ci in tests/console"
  PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --prefix "$console_tests"
fi
