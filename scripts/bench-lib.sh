# Start-up shared by the bench scripts that run node processes (sourced, after `set -eu`): a temporary directory
# ($dir) removed on exit, the processes to stop on exit ($pids: add each one started), the cluster's credentials
# drawn for the run (exported to the nodes only through their environment; never -dev-insecure), and
# ready <http port> <log>, which waits up to 30 s for a node's /readyz; stop_all stops every process in $pids.
dir=$(mktemp -d)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
pids=""
stop_all() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  for p in $pids; do wait "$p" 2>/dev/null || true; done
  pids=""
}
cleanup() {
  stop_all
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

secret() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
export CLUSTER_USER=bench CLUSTER_PASSWORD="$(secret)" SESSION_SECRET="$(secret)"

ready() { # <http port> <log>
  i=0
  until curl -fs "http://127.0.0.1:$1/readyz" >/dev/null 2>&1; do
    i=$((i+1)); [ $i -gt 300 ] && { echo "node on :$1 not ready:"; cat "$2"; exit 1; }
    sleep 0.1
  done
}

# owners <file of /api/cluster JSON>: "<rooms owned by the node named owner> <rooms owned by the node named relay>"
# (bench-fanout.sh's two nodes), from its "owners" member; empty when the file has none.
owners() {
  tr -d ' \n' <"$1" | sed -n 's/.*"owners":{\([^}]*\)}.*/\1/p' | tr ',' '\n' |
    awk -F: '$1 == "\"owner\"" { o = $2 } $1 == "\"relay\"" { r = $2 } END { if (o != "" || r != "") print o + 0, r + 0 }'
}
