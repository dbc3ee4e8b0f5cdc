#!/usr/bin/env bash
# aauth-proxy developer entry point — the README's two quick-start commands:
#   ./dev.sh run    install what is missing, build, start the proxy on conf/aauth-proxy.json
#   ./dev.sh test   install what is missing, build (plain + ASan/UBSan + libFuzzer), run every
#                   test suite; FUZZ_SECONDS (default 20, 0 skips) bounds each fuzz target
# Debian 12, as root (or with sudo). Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD

APT_PKGS=(gcc meson ninja-build pkg-config libevent-dev libsodium-dev libjansson-dev
          libcurl4-openssl-dev libssl-dev openssl ca-certificates curl)
TEST_PKGS=(python3 python3-pytest python3-cryptography python3-requests python3-httpx
           clang libclang-rt-14-dev)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"
	else echo "need root (or sudo) to install: $*" >&2; exit 1; fi
}

# Install the Debian packages that are not installed yet (apt-get update once).
install_pkgs() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if ! command -v node >/dev/null 2>&1; then missing+=(nodejs npm); fi
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

build_targets() { # build DIR "TARGETS" [meson options...]: only these targets
	local dir=$1 targets=$2; shift 2
	if [ ! -f "$dir/build.ninja" ]; then meson setup "$dir" "$@" >/dev/null || meson setup --wipe "$dir" "$@"; fi
	# shellcheck disable=SC2086 # a list of target names
	meson compile -C "$dir" $targets >/dev/null || meson compile -C "$dir" $targets
}

cmd_run() {
	install_pkgs "${APT_PKGS[@]}"
	say "building"
	build build
	mkdir -p state/tokens
	chmod 700 state
	if [ ! -f state/agent-key.pem ]; then
		say "generating the agent key state/agent-key.pem (register the JWKS below)"
		./build/aauth-proxy keygen --out state/agent-key.pem
	fi
	if [ ! -f state/tokens/example-api ]; then
		# Placeholder so the example rule is complete; replace with a real token.
		(umask 077; echo "replace-me-with-an-access-token" > state/tokens/example-api)
	fi
	./build/aauth-proxy check-config -c conf/aauth-proxy.json
	say "starting aauth-proxy on 127.0.0.1:8787 (Ctrl-C stops it)"
	exec ./build/aauth-proxy run -c conf/aauth-proxy.json "$@"
}

cmd_test() {
	install_pkgs "${APT_PKGS[@]}" "${TEST_PKGS[@]}"
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
