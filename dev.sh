#!/usr/bin/env bash
# aauth-proxy developer entry point — the README's two quick-start commands:
#   ./dev.sh run    install what is missing, build, start the demo resource and the proxy on
#                   conf/aauth-proxy.json, print a `try:` command that gets a verified request
#   ./dev.sh test   install what is missing, build (plain + ASan/UBSan + libFuzzer), run every
#                   test suite; FUZZ_SECONDS (default 20, 0 skips) bounds each fuzz target
# Debian 12, as root (or with sudo). Safe to run again: it installs only what is missing.
# `run` listens on 127.0.0.1:8787 (proxy) and 127.0.0.1:8790 (demo resource);
# AAUTH_DEV_LISTEN and AAUTH_DEV_DEMO_LISTEN move them (the tests do, to stay apart).
# The proxy gets its address as --listen, so the printed command is always right.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD

APT_PKGS=(gcc meson ninja-build pkg-config libevent-dev libsodium-dev libjansson-dev
          libcurl4-openssl-dev libssl-dev openssl ca-certificates curl)
TEST_PKGS=(python3 python3-pytest python3-cryptography python3-requests python3-httpx openssl
           python3-prometheus-client python3-yaml clang libclang-rt-14-dev)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"
	else echo "need root (or sudo) to install: $*" >&2; exit 1; fi
}

# Install the Debian packages that are not installed yet (apt-get update once).
# NEED_NODE=1: Node too (the tests' undici clients; Debian's or any on PATH).
install_pkgs() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if [ "${NEED_NODE:-0}" = 1 ] && ! command -v node >/dev/null 2>&1; then missing+=(nodejs npm); fi
	[ ${#missing[@]} -eq 0 ] && return 0
	say "installing: ${missing[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build() { # build DIR [meson options...]
	local dir=$1; shift
	if [ ! -f "$dir/build.ninja" ]; then meson setup "$dir" "$@" >/dev/null || meson setup --wipe "$dir" "$@"; fi
	meson compile -C "$dir" >/dev/null || meson compile -C "$dir"
}

# Wait (bounded) until HOST:PORT accepts a connection while process $2 lives.
wait_listening() { # ADDR PID
	local host=${1%:*} port=${1##*:} i
	host=${host#[}; host=${host%]}
	for ((i = 0; i < 100; i++)); do
		kill -0 "$2" 2>/dev/null || return 1
		(exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

build_targets() { # build DIR "TARGETS" [meson options...]: only these targets
	local dir=$1 targets=$2; shift 2
	if [ ! -f "$dir/build.ninja" ]; then meson setup "$dir" "$@" >/dev/null || meson setup --wipe "$dir" "$@"; fi
	# shellcheck disable=SC2086 # a list of target names
	meson compile -C "$dir" $targets >/dev/null || meson compile -C "$dir" $targets
}

cmd_run() {
	local conf=conf/aauth-proxy.json
	local proxy=${AAUTH_DEV_LISTEN:-127.0.0.1:8787} demo=${AAUTH_DEV_DEMO_LISTEN:-127.0.0.1:8790}
	local demo_pid proxy_pid rc noproxy=
	install_pkgs "${APT_PKGS[@]}"
	say "building"
	build build
	mkdir -p state/tokens
	chmod 700 state
	if [ ! -f state/agent-key.pem ]; then
		say "generating the agent key state/agent-key.pem (register the JWKS below)"
		./build/aauth-proxy keygen --out state/agent-key.pem
	fi
	# The demo resource verifies with the public half only, as a real resource would.
	if [ ! -f state/agent-key.pub.pem ] || [ state/agent-key.pem -nt state/agent-key.pub.pem ]; then
		openssl pkey -in state/agent-key.pem -pubout -out state/agent-key.pub.pem
	fi
	if [ ! -s state/tokens/demo ]; then
		# A random token for the demo resource; never a placeholder that could go anywhere.
		(umask 077; echo "demo-$(openssl rand -hex 16)" > state/tokens/demo)
	fi
	./build/aauth-proxy check-config -c "$conf"
	if [ ! -f state/ca.pem ]; then
		say "creating the local CA state/ca.pem (agents trust it for intercepted https://)"
		./build/aauth-proxy ca init -c "$conf" >/dev/null
	fi

	say "starting the demo resource on $demo and aauth-proxy on $proxy (Ctrl-C stops both)"
	./build/aauth-proxy demo-resource --listen "$demo" --key state/agent-key.pub.pem \
		--token-file state/tokens/demo &
	demo_pid=$!
	./build/aauth-proxy run -c "$conf" --listen "$proxy" "$@" &
	proxy_pid=$!
	# Ctrl-C reaches every process of the terminal's group, so both stop by themselves and
	# this shell only waits (ignoring it keeps that wait whole); a SIGTERM to this script is
	# passed on to the proxy. The demo never outlives the proxy.
	trap '' INT
	trap 'kill -TERM "$proxy_pid" 2>/dev/null' TERM
	trap 'kill -TERM "$demo_pid" "$proxy_pid" 2>/dev/null' EXIT
	if ! wait_listening "$demo" "$demo_pid" || ! wait_listening "$proxy" "$proxy_pid"; then
		echo "aauth-proxy or the demo resource did not start (see above)" >&2
		exit 1
	fi
	# A no_proxy naming localhost would send curl around the proxy.
	[ -n "${no_proxy:-}${NO_PROXY:-}" ] && noproxy="--noproxy '' "
	echo "try: curl ${noproxy}-x http://$proxy http://demo.localhost:${demo##*:}/hello"
	say "point an agent at the proxy (in its shell):"
	echo "    eval \"\$(build/aauth-proxy env -c $conf)\"" >&2
	rc=0
	wait "$proxy_pid" || rc=$?
	# The TERM trap interrupts that wait: wait on while the proxy drains.
	while kill -0 "$proxy_pid" 2>/dev/null; do
		rc=0
		wait "$proxy_pid" || rc=$?
	done
	kill -TERM "$demo_pid" 2>/dev/null || true
	wait "$demo_pid" 2>/dev/null || true
	trap - EXIT
	return "$rc"
}

cmd_test() {
	NEED_NODE=1 install_pkgs "${APT_PKGS[@]}" "${TEST_PKGS[@]}"
	say "building (debug) and (ASan+UBSan)"
	build build
	build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
	say "unit tests"
	meson test -C build --print-errorlogs
	say "unit tests under ASan+UBSan"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C build-asan --print-errorlogs
	if [ "${FUZZ_SECONDS:-20}" != 0 ]; then
		say "fuzzing (libFuzzer + ASan/UBSan, ${FUZZ_SECONDS:-20} s a target)"
		CC=clang build_targets build-fuzz "fuzz_request fuzz_response fuzz_sfv fuzz_httpsig fuzz_config" \
			-Dfuzz=true
		tests/fuzz/run.sh build-fuzz
	fi
	if [ -f tests/node/package.json ]; then
		say "installing Node test dependencies"
		(cd tests/node && { [ -f package-lock.json ] && npm ci --no-audit --no-fund --silent \
			|| npm install --no-audit --no-fund --silent; })
	fi
	say "black-box tests (pytest, optimised build)"
	AAUTH_PROXY_BIN="$ROOT/build/aauth-proxy" /usr/bin/python3 -m pytest -q tests/py "$@"
	say "black-box tests (pytest, ASan+UBSan binary)"
	AAUTH_SANITIZER=1 ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		AAUTH_PROXY_BIN="$ROOT/build-asan/aauth-proxy" /usr/bin/python3 -m pytest -q -x tests/py "$@"
	say "all tests passed"
}

case "${1:-}" in
run) shift; cmd_run "$@" ;;
test) shift; cmd_test "$@" ;;
*) echo "usage: ./dev.sh run [proxy options] | ./dev.sh test [pytest options]" >&2; exit 2 ;;
esac
