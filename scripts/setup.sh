#!/bin/sh
# task setup (run by task test first, and by .ci/run): what the tests need besides Go and Node.
#
#   - Debian packages: chromium (the browser tests; required), nginx-light (the load balancer tests), iproute2
#     and nftables (the chaos suite, which also needs root), prometheus (promtool checks the scrape configs).
#     As root with apt-get they are installed, and the daemons Debian's packages start (nginx on :80, Prometheus
#     on :9090) are stopped: the project runs its own. Otherwise each missing one is named, one line each, with
#     how to get it.
#   - the nats CLI (test/e2e runs the README's recipes with it): go install, as any user.
#   - the frontend's npm packages, when frontend/node_modules is absent.
#
# Exits 1 when something required is still missing; a missing optional tool only skips the tests that use it.
set -eu

PATH="$PATH:/usr/sbin:/sbin" # nginx, ip and nft live there on Debian; a user's PATH often lacks them
chromium="${TICKMESH_CHROMIUM:-/usr/bin/chromium}"
nats_version=v0.5.0

have() { command -v "$1" >/dev/null 2>&1; }

# missing lines: "package|command|why|required", for what is not there yet.
check() {
	[ -x "$chromium" ] || echo "chromium|$chromium|the browser tests (task test:browser) need it; or set TICKMESH_CHROMIUM to a Chromium binary|yes"
	have nginx || echo "nginx-light|nginx|the tests of the nginx load balancer are skipped without it|no"
	have ip || echo "iproute2|ip|the chaos suite (root only) is skipped without it|no"
	have nft || echo "nftables|nft|the chaos suite (root only) is skipped without it|no"
	have promtool || echo "prometheus|promtool|the Prometheus configurations are checked without promtool|no"
}

missing="$(check)"
installer=no
if [ -n "$missing" ]; then
	if [ "$(id -u)" = 0 ] && have apt-get; then
		installer=yes
		pkgs=""
		prometheus=no
		for p in $(echo "$missing" | cut -d'|' -f1); do
			if [ "$p" = prometheus ]; then prometheus=yes; else pkgs="$pkgs $p"; fi
		done
		echo "task setup: installing$pkgs$([ $prometheus = no ] || echo ' prometheus')"
		apt-get update -qq
		[ -z "$pkgs" ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
		# Without its recommends: prometheus recommends (and would start) prometheus-node-exporter.
		[ $prometheus = no ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
		for daemon in nginx prometheus; do
			systemctl stop "$daemon" 2>/dev/null || service "$daemon" stop 2>/dev/null || true
		done
		missing="$(check)"
	fi
fi
required=no
if [ -n "$missing" ]; then
	if [ $installer = yes ]; then
		echo "task setup: still missing after apt-get:"
	else
		echo "task setup: missing (installing needs root and apt-get):"
	fi
	echo "$missing" | while IFS='|' read -r pkg cmd why req; do
		echo "  $cmd: $why - get it with: sudo apt-get install $pkg"
	done
	case "$missing" in *"|yes"*) required=yes ;; esac
fi

if ! have nats; then
	echo "task setup: installing the nats CLI $nats_version (go install; a few minutes the first time)"
	GOFLAGS= go install "github.com/nats-io/natscli/nats@$nats_version"
	gobin="$(go env GOBIN)"
	[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
	have nats || echo "task setup: the nats CLI is in $gobin, which is not on your PATH: add it (test/e2e skips its recipes otherwise)"
fi

if [ -d frontend ] && [ ! -d frontend/node_modules ]; then
	(cd frontend && npm ci --no-audit --no-fund)
fi

if [ "$required" = yes ]; then
	echo "task setup: install what is marked above, then run task test again" >&2
	exit 1
fi
