#!/bin/bash
# Benchmark aauth-proxy against nginx (reverse proxy, upstream keep-alive)
# and tinyproxy, all on loopback, with wrk. Not a test: run by hand.
#
#   tests/bench/bench.sh            # wrk -t2 -c50 -d10s --latency per case
#   DURATION=5s CONNS=20 tests/bench/bench.sh
#
# It builds the daemon with --buildtype=release in build-bench/, starts an
# nginx upstream serving a small static body, then measures
#   (a) aauth-proxy, sign rule      (b) aauth-proxy, pass rule
#   (c) nginx as a reverse proxy    (d) tinyproxy
#   (e) the upstream directly, for reference
# and prints requests/s, p50, p99, the server's CPU time per request (user +
# system from /proc over the wrk run: on a shared 2-core box this is the
# steadier figure, since wrk and the upstream compete for the same cores)
# and the ratios sign/nginx, pass/nginx, pass/tinyproxy in both; then holds
# 1,000 idle keep-alive connections to aauth-proxy and reports its VmRSS.
# Then HTTPS, with hey (wrk has no proxy support): https:// requests through
# CONNECT, intercepted and signed by aauth-proxy, beside nginx terminating
# TLS and proxying to the same upstream — kept-alive connections, and a new
# connection (CONNECT + full TLS handshake) per request. HTTPS_ONLY=1 runs
# just that part. hey verifies no certificate, so each path is checked with
# a verifying curl first.
# Needs: wrk, hey, nginx (nginx-light), tinyproxy, curl, meson, openssl,
# /usr/bin/python3.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$REPO/build-bench}
VECTORS=${AAUTH_VECTORS:-$REPO/tests/vectors}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-50}
IDLE=${IDLE:-1000}
PY=/usr/bin/python3

# Install what is missing (Debian 12, as root), like ./dev.sh does.
need=()
for pkg in wrk hey nginx-light tinyproxy curl meson openssl; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" -eq 0 ]; then
	echo "bench: installing ${need[*]}" >&2
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
for tool in wrk hey nginx tinyproxy curl meson openssl "$PY"; do
	command -v "$tool" >/dev/null || { echo "bench: $tool not found" >&2; exit 1; }
done

DIR=$(mktemp -d /tmp/aauth-bench.XXXXXX)
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	done
	if [ -n "${KEEP:-}" ]; then
		echo "bench: kept $DIR" >&2
	else
		rm -rf "$DIR"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench: $*" >&2; }

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT PID NAME: until something accepts on PORT (10 s at most)
wait_port() {
	local i
	for i in $(seq 100); do
		if ! kill -0 "$2" 2>/dev/null; then
			log "$3 exited during start-up"; return 1
		fi
		if "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	log "$3 did not listen on port $1 within 10 s"
	return 1
}

render() { # render TEMPLATE OUT
	sed -e "s|@DIR@|$DIR|g" -e "s|@UP1@|$UP1|g" -e "s|@UP2@|$UP2|g" \
	    -e "s|@NGXPROXY@|$NGXPROXY|g" -e "s|@TINY@|$TINY|g" -e "s|@AP@|$AP|g" \
	    -e "s|@NGXTLS@|$NGXTLS|g" -e "s|@UP3@|$UP3|g" "$1" >"$2"
}

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

log "building (release) in $BUILD"
if [ -d "$BUILD" ]; then
	meson configure "$BUILD" -Dbuildtype=release >/dev/null
else
	meson setup "$BUILD" --buildtype=release >/dev/null
fi
meson compile -C "$BUILD" aauth-proxy >/dev/null
BIN=$BUILD/aauth-proxy

UP1=$(free_port); UP2=$(free_port); NGXPROXY=$(free_port); TINY=$(free_port); AP=$(free_port)
NGXTLS=$(free_port); UP3=$(free_port)
mkdir -p "$DIR/www" "$DIR/tmp"
# nginx workers run as an unprivileged user when started as root
chmod 755 "$DIR" "$DIR/www"
# a small static body (~ 100 bytes, like a small JSON API answer)
printf '{"ok":true,"service":"bench-upstream","items":[1,2,3],"note":"a small static body for wrk"}\n' >"$DIR/www/index.json"
cp "$VECTORS/lumoauth/agent-key.pem" "$DIR/agent-key.pem"
chmod 600 "$DIR/agent-key.pem"
printf 'bench-token-%s\n' "$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')" >"$DIR/token"

render "$HERE/nginx-upstream.conf.in" "$DIR/nginx-upstream.conf"
render "$HERE/nginx-proxy.conf.in" "$DIR/nginx-proxy.conf"
render "$HERE/tinyproxy.conf.in" "$DIR/tinyproxy.conf"
render "$HERE/aauth-proxy.json.in" "$DIR/aauth-proxy.json"
render "$HERE/nginx-tls.conf.in" "$DIR/nginx-tls.conf"
# nginx's certificate and the proxy's CA (beside the key, the default)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-keyout "$DIR/nginx-tls.key" -out "$DIR/nginx-tls.pem" -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 2>/dev/null
"$BIN" ca init -c "$DIR/aauth-proxy.json" >/dev/null

nginx -p "$DIR" -e "$DIR/nginx-upstream.err" -c "$DIR/nginx-upstream.conf" &
UP_PID=$!
PIDS+=($!); wait_port "$UP1" "$!" "nginx upstream"
nginx -p "$DIR" -e "$DIR/nginx-proxy.err" -c "$DIR/nginx-proxy.conf" &
NGX_PID=$!
PIDS+=($!); wait_port "$NGXPROXY" "$!" "nginx proxy"
nginx -p "$DIR" -e "$DIR/nginx-tls.err" -c "$DIR/nginx-tls.conf" &
NGXTLS_PID=$!
PIDS+=($!); wait_port "$NGXTLS" "$!" "nginx tls"
tinyproxy -d -c "$DIR/tinyproxy.conf" >"$DIR/tinyproxy.out" 2>&1 &
TINY_PID=$!
PIDS+=($!); wait_port "$TINY" "$!" "tinyproxy"
"$BIN" run -c "$DIR/aauth-proxy.json" 2>"$DIR/aauth-proxy.err" &
AP_PID=$!
PIDS+=($AP_PID); wait_port "$AP" "$AP_PID" "aauth-proxy" || { cat "$DIR/aauth-proxy.err" >&2; exit 1; }

SIGN_URL="http://127.0.0.1:$UP1/index.json"
PASS_URL="http://127.0.0.1:$UP2/index.json"

# sanity: every path returns the body
want=$(cat "$DIR/www/index.json")
check() { # check NAME CURL-ARGS...
	local name=$1 got; shift
	got=$(curl -sS --noproxy '' --max-time 10 "$@") || { log "$name: curl failed"; exit 1; }
	[ "$got" = "$want" ] || { log "$name: unexpected body: $got"; exit 1; }
}
check upstream "$SIGN_URL"
check sign -x "http://127.0.0.1:$AP" "$SIGN_URL"
check pass -x "http://127.0.0.1:$AP" "$PASS_URL"
check nginx "http://127.0.0.1:$NGXPROXY/index.json"
check tinyproxy -x "http://127.0.0.1:$TINY" "$SIGN_URL"
# HTTPS, verified: the proxy's leaf against its CA, nginx's against its own
HTTPS_SIGN_URL="https://127.0.0.1:$UP3/index.json"
NGXTLS_URL="https://127.0.0.1:$NGXTLS/index.json"
check https-sign -x "http://127.0.0.1:$AP" --cacert "$DIR/ca.pem" "$HTTPS_SIGN_URL"
check nginx-tls --cacert "$DIR/nginx-tls.pem" "$NGXTLS_URL"

to_ms() { # wrk's 1.23ms / 456.78us / 1.20s → milliseconds
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
		else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
		else printf "%s", v }'
}
# cpu_ticks PID: user + system clock ticks of PID and its children (an
# nginx master's worker, tinyproxy's helpers), all threads included
cpu_ticks() {
	local pid t=0 v
	for pid in "$1" $(pgrep -P "$1" 2>/dev/null); do
		# fields 14 and 15 of /proc/PID/stat; the name (field 2) may
		# hold spaces, so count from after its closing parenthesis
		v=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}') || v=0
		t=$((t + ${v:-0}))
	done
	echo "$t"
}
TCK=$(getconf CLK_TCK)

# run_wrk NAME TARGET URL PID: TARGET non-empty → absolute-form via
# proxy.lua; PID is the server whose CPU time is charged to the requests
declare -A RPS CPU
run_wrk() {
	local name=$1 target=$2 url=$3 pid=$4 out rps p50 p99 non2xx errs t0 t1 n us
	out=$DIR/wrk-$name.txt
	log "wrk $name ($DURATION, -t$THREADS -c$CONNS)"
	if ! kill -0 "$AP_PID" 2>/dev/null; then
		log "aauth-proxy is no longer running:"; tail -20 "$DIR/aauth-proxy.err" >&2; exit 1
	fi
	t0=$(cpu_ticks "$pid")
	if [ -n "$target" ]; then
		BENCH_TARGET=$target timeout 120 wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency \
			-s "$HERE/proxy.lua" "$url" >"$out"
	else
		timeout 120 wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$url" >"$out"
	fi
	t1=$(cpu_ticks "$pid")
	rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
	n=$(awk '/ requests in / {print $1}' "$out")
	us=$(awk -v a="$t0" -v b="$t1" -v n="${n:-0}" -v hz="$TCK" \
		'BEGIN { if (n > 0) printf "%.1f", (b - a) * 1e6 / hz / n; else print "n/a" }')
	CPU[$name]=$us
	p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
	p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
	non2xx=$(awk '/Non-2xx/ {print $NF}' "$out"); non2xx=${non2xx:-0}
	errs=$(awk '/Socket errors/ {print $0}' "$out" | sed 's/.*errors: //'); errs=${errs:-none}
	RPS[$name]=$rps
	printf '%-14s %10s req/s   p50 %8s ms   p99 %8s ms   cpu %6s us/req   non-2xx %s   socket errors: %s\n' \
		"$name" "$rps" "$p50" "$p99" "$us" "$non2xx" "$errs"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# run_hey NAME PID URL [hey options]: requests/s and CPU per request of PID
run_hey() {
	local name=$1 pid=$2 url=$3 out t0 t1 n us rps ok; shift 3
	out=$DIR/hey-$name.txt
	log "hey $name ($DURATION, -c $CONNS $*)"
	t0=$(cpu_ticks "$pid")
	timeout 120 hey -z "$DURATION" -c "$CONNS" "$@" "$url" >"$out"
	t1=$(cpu_ticks "$pid")
	rps=$(awk '/Requests\/sec:/ {print $2}' "$out")
	ok=$(awk '/\[200\]/ {print $2}' "$out"); ok=${ok:-0}
	n=$(awk '/responses/ {s += $2} END {print s + 0}' "$out")
	us=$(awk -v a="$t0" -v b="$t1" -v n="$n" -v hz="$TCK" \
		'BEGIN { if (n > 0) printf "%.1f", (b - a) * 1e6 / hz / n; else print "n/a" }')
	RPS[$name]=$rps
	CPU[$name]=$us
	printf '%-22s %10s req/s   cpu %7s us/req   200: %s of %s   errors: %s\n' "$name" "$rps" "$us" \
		"$ok" "$n" "$(awk '/Error distribution/ {f=1; next} f && NF {print; exit}' "$out")"
}

https_bench() {
	echo "== HTTPS, hey -z $DURATION -c $CONNS: intercepted CONNECT (aauth-proxy, sign) vs nginx terminating TLS"
	run_hey https-aauth-keepalive "$AP_PID" "$HTTPS_SIGN_URL" -x "http://127.0.0.1:$AP"
	run_hey https-nginx-keepalive "$NGXTLS_PID" "$NGXTLS_URL"
	run_hey https-aauth-newconn "$AP_PID" "$HTTPS_SIGN_URL" -x "http://127.0.0.1:$AP" -disable-keepalive
	run_hey https-nginx-newconn "$NGXTLS_PID" "$NGXTLS_URL" -disable-keepalive
	echo "== HTTPS ratios (requests/s; in brackets from CPU time per request)"
	echo "keep-alive aauth/nginx        $(ratio "${RPS[https-aauth-keepalive]}" "${RPS[https-nginx-keepalive]}")   [$(ratio "${CPU[https-nginx-keepalive]}" "${CPU[https-aauth-keepalive]}")]"
	echo "new connections aauth/nginx   $(ratio "${RPS[https-aauth-newconn]}" "${RPS[https-nginx-newconn]}")   [$(ratio "${CPU[https-nginx-newconn]}" "${CPU[https-aauth-newconn]}")]"
	echo "leaf certificates minted: $(grep -c 'minted a TLS certificate' "$DIR/aauth-proxy.err")"
	echo "VmRSS after the HTTPS runs: $(rss "$AP_PID") KiB"
}

if [ -n "${HTTPS_ONLY:-}" ]; then
	https_bench
	kill -TERM "$AP_PID"
	exit 0
fi

echo "== wrk -t$THREADS -c$CONNS -d$DURATION --latency, body $(wc -c <"$DIR/www/index.json") bytes, $(nproc) cores"
run_wrk upstream "" "$SIGN_URL" "$UP_PID"
run_wrk aauth-sign "$SIGN_URL" "http://127.0.0.1:$AP/" "$AP_PID"
run_wrk aauth-pass "$PASS_URL" "http://127.0.0.1:$AP/" "$AP_PID"
run_wrk nginx-proxy "" "http://127.0.0.1:$NGXPROXY/index.json" "$NGX_PID"
run_wrk tinyproxy "$SIGN_URL" "http://127.0.0.1:$TINY/" "$TINY_PID"

SIGN=${RPS[aauth-sign]}; PASS=${RPS[aauth-pass]}; NGX=${RPS[nginx-proxy]}; TP=${RPS[tinyproxy]}
echo "== ratios (requests/s; in brackets the same from CPU time per request)"
echo "sign/nginx      $(ratio "$SIGN" "$NGX")   [$(ratio "${CPU[nginx-proxy]}" "${CPU[aauth-sign]}")]"
echo "pass/nginx      $(ratio "$PASS" "$NGX")   [$(ratio "${CPU[nginx-proxy]}" "${CPU[aauth-pass]}")]"
echo "pass/tinyproxy  $(ratio "$PASS" "$TP")   [$(ratio "${CPU[tinyproxy]}" "${CPU[aauth-pass]}")]"
echo "sign/pass       $(ratio "$SIGN" "$PASS")   [$(ratio "${CPU[aauth-pass]}" "${CPU[aauth-sign]}")]"

echo "== aauth-proxy memory"
echo "VmRSS after the wrk runs: $(rss "$AP_PID") KiB"
echo "== $IDLE idle keep-alive connections to aauth-proxy (one signed request each)"
timeout 300 "$PY" "$HERE/idle_conns.py" 127.0.0.1 "$AP" "$SIGN_URL" "$IDLE" "$AP_PID"

https_bench

if grep -q '"level":"error"' "$DIR/aauth-proxy.err"; then
	echo "== aauth-proxy logged errors:"
	grep '"level":"error"' "$DIR/aauth-proxy.err" | head -5
fi
kill -TERM "$AP_PID"
for _ in $(seq 100); do kill -0 "$AP_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$AP_PID" 2>/dev/null; then
	echo "aauth-proxy did not exit within 10 s of SIGTERM"
else
	wait "$AP_PID" && echo "aauth-proxy exited cleanly on SIGTERM" || echo "aauth-proxy exit status $?"
fi
