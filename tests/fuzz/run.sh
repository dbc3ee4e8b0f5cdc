#!/usr/bin/env bash
# Run every libFuzzer target (or those in FUZZ_TARGETS) for FUZZ_SECONDS
# (default 20) each, starting from a copy of its seed corpus so the
# repository stays clean. Exits non-zero when a target finds a crash, a
# leak, an invariant broken or a timeout; the input is kept under
# BUILD/fuzz-artifacts/ with the command that replays it.
#   tests/fuzz/run.sh [BUILD]       BUILD defaults to build-fuzz
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build-fuzz}
SECS=${FUZZ_SECONDS:-20}
# libFuzzer reads -max_total_time=0 as "no limit": 0 here means "skip".
if [ "$SECS" = 0 ]; then echo "fuzzing skipped (FUZZ_SECONDS=0)"; exit 0; fi
read -r -a TARGETS <<<"${FUZZ_TARGETS:-request response sfv httpsig config}"
ART="$BUILD/fuzz-artifacts"
work=$(mktemp -d "${TMPDIR:-/tmp}/aauth-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$ART"
failed=()

for t in "${TARGETS[@]}"; do
	bin="$BUILD/fuzz_$t"
	[ -x "$bin" ] || { echo "fuzz_$t: not built ($bin)" >&2; exit 2; }
	mkdir -p "$work/$t"
	cp tests/fuzz/corpus/"$t"/* "$work/$t/"
	opts=(-max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10
	      -print_final_stats=1 -artifact_prefix="$ART/$t-")
	[ -f "tests/fuzz/$t.dict" ] && opts+=(-dict="tests/fuzz/$t.dict")
	log="$work/$t.log"
	touch "$work/$t.start" # to tell this run's findings from older ones
	if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1 \
		"$bin" "${opts[@]}" "$work/$t" >"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
		added=$(sed -n 's/^stat::new_units_added: *//p' "$log")
		cov=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | grep -o 'cov: [0-9]*' || true)
		printf 'fuzz_%-8s %10s runs in %ss (%s/s), %s, %s new inputs, no crash\n' \
			"$t" "${runs:-?}" "$SECS" "${rate:-?}" "${cov:-cov: ?}" "${added:-?}"
	else
		failed+=("$t")
		echo "fuzz_$t: FAILED — its report:" >&2
		# The finding and its stack, not ASan's shadow-byte map.
		grep -v '^#[0-9]' "$log" |
			sed -n '/ERROR\|invariant broken\|runtime error\|Timeout\|out-of-memory/,$p' |
			grep -v '^  0x\|^=>0x\|^Shadow\|^  [A-Z][a-z ]*:  *[0-9a-f ]*$' | head -n 40 >&2
		grep -E '^SUMMARY|Test unit written' "$log" >&2 || true
		find "$ART" -name "$t-*" -newer "$work/$t.start" | while read -r a; do
			echo "  replay: $bin $a" >&2
		done
	fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzzing found problems in: ${failed[*]} (inputs in $ART/)" >&2
	exit 1
fi
