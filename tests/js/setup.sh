#!/bin/sh
# tests/js/setup.sh SOURCE_DIR BUILD_DIR: the JavaScript side of the tests,
# inside the build directory only. Copies clients/node, examples/nextjs and
# examples/shop to BUILD_DIR/js (keeping their relative places, which the
# example's file: dependencies and its sample shop rely on), installs their
# npm packages there from the lock files (npm ci: the registry, nothing
# global) and builds the TypeScript clients. Run by ctest as the fixture of
# node_clients and test_nextjs.
set -eu
SRC=$1
OUT=$2/js
command -v npm > /dev/null || { echo "setup.sh: npm is missing" >&2; exit 1; }
rm -rf "$OUT"
mkdir -p "$OUT/clients" "$OUT/examples"
copy() {  # copy DIR from SRC to OUT, without installed or built files
    mkdir -p "$OUT/$1"
    (cd "$SRC/$1" && tar cf - --exclude=node_modules --exclude=dist \
        --exclude=.next --exclude='*.tsbuildinfo' .) | (cd "$OUT/$1" && tar xf -)
}
copy clients/node
copy examples/nextjs
copy examples/shop
export npm_config_audit=false npm_config_fund=false \
    npm_config_update_notifier=false NEXT_TELEMETRY_DISABLED=1
cd "$OUT/clients/node"
npm ci --loglevel=error
npm run build --silent
# The example packs the clients it depends on (install-links): after they
# are built.
cd "$OUT/examples/nextjs"
npm ci --loglevel=error
echo "setup.sh: JavaScript packages ready in $OUT"
