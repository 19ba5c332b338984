# bench/clients/node.sh: @jobq/client (clients/node) for the client
# benchmark, built in the build directory as tests/js/setup.sh builds it for
# the tests. POSIX sh, sourced by bench/run.sh, which sets HERE to the bench/
# directory and NODE_HOME to where the copy is installed and run.
#
#   node_client_install   copies clients/node (or NODE_SRC: its sources
#                         and lock file) and clients/node_bench.mjs into
#                         NODE_HOME, installs its
#                         packages from the lock file (npm ci, nothing
#                         global; again only when the lock file changed) and
#                         builds the TypeScript (npm run build)

NODE_SRC=${NODE_SRC:-${HERE:-bench}/../clients/node}
NODE_HOME=${NODE_HOME:-build/bench/node}

node_client_install() {
    command -v npm >/dev/null 2>&1 || { echo "bench: npm is missing" >&2; return 1; }
    mkdir -p "$NODE_HOME"
    # A changed lock file means a fresh install.
    cmp -s "$NODE_SRC/package-lock.json" "$NODE_HOME/package-lock.json" ||
        rm -rf "$NODE_HOME/node_modules"
    # The sources afresh, keeping the installed packages (the workspace
    # links in node_modules are relative, so they stay right).
    find "$NODE_HOME" -mindepth 1 -maxdepth 1 ! -name node_modules \
        -exec rm -rf {} +
    (cd "$NODE_SRC" && tar cf - --exclude=node_modules --exclude=dist \
        --exclude='*.tsbuildinfo' .) | (cd "$NODE_HOME" && tar xf -) || return 1
    cp "$HERE/clients/node_bench.mjs" "$NODE_HOME/"
    (
        cd "$NODE_HOME" || exit 1
        export npm_config_audit=false npm_config_fund=false \
            npm_config_update_notifier=false
        if [ ! -d node_modules/zeromq ]; then
            echo "bench: npm ci in $NODE_HOME" >&2
            npm ci --loglevel=error >/dev/null 2>&1 || {
                echo "bench: npm ci failed in $NODE_HOME" >&2
                exit 1
            }
        fi
        npm run build --silent >/dev/null 2>&1 || {
            echo "bench: the TypeScript build failed in $NODE_HOME" >&2
            exit 1
        }
    )
}
