#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# vhu-bench smoke test (TAP): start `vhu-blk --null`, run vhu-bench against
# it for a second in each mode and check that it reports sane numbers.
# Speed is not checked here (that is bench/compare.sh's job).
#   smoke.sh VHU_BENCH VHU_BLK
set -u
bench=${1:?vhu-bench path}
blk=${2:?vhu-blk path}
dir=$(mktemp -d /tmp/vhu-bench-smoke.XXXXXX)
sock=$dir/blk.sock
blk_pid=
n=0
failed=0

cleanup() {
	[ -n "$blk_pid" ] && kill "$blk_pid" 2>/dev/null && wait "$blk_pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

ok() { # ok STATUS NAME [diagnostic file]
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=$((failed + 1))
		[ -n "${3:-}" ] && [ -f "$3" ] && sed 's/^/# /' "$3"
	fi
}

# check_json FILE PYTHON-EXPR: the expression sees the report as `j`.
check_json() {
	python3 - "$1" "$2" <<'PY'
import json, sys
with open(sys.argv[1]) as fh:
    text = fh.read()
j = json.loads(text)  # exactly one object, nothing else on stdout
ok = eval(sys.argv[2], {"j": j})
if not ok:
    print("# failed: " + sys.argv[2]); print("# report: " + text.strip())
sys.exit(0 if ok else 1)
PY
}

echo "1..12"

"$blk" --socket-path "$sock" --null --num-queues 2 >"$dir/blk.log" 2>&1 &
blk_pid=$!
for _ in $(seq 100); do
	[ -S "$sock" ] && break
	sleep 0.1
done
[ -S "$sock" ]
ok $? "vhu-blk --null listens" "$dir/blk.log"

keys='all(k in j for k in ("iops","mbps","lat_p50_us","lat_p99_us","lat_p999_us","backend_cpu_us_per_req"))'
run() { # run NAME ARGS... -> $dir/NAME.json, status
	timeout 60 "$bench" --socket "$sock" --duration 1 --warmup 0.2 --json "${@:2}" \
		>"$dir/$1.json" 2>"$dir/$1.err"
}

run notify --queue-depth 8
ok $? "notify mode runs" "$dir/notify.err"
check_json "$dir/notify.json" "$keys and j['iops'] > 0 and j['requests'] > 0 and j['errors'] == 0 \
and j['mode'] == 'notify' and j['lat_p50_us'] > 0 and j['lat_p50_us'] <= j['lat_p99_us'] <= j['lat_p999_us'] \
and j['backend_pid'] == $blk_pid and j['backend_cpu_us_per_req'] >= 0 and j['backend_ctxsw_per_req'] >= 0"
ok $? "notify report: keys, iops > 0, percentiles ordered, backend pid from SO_PEERCRED"

run poll --queue-depth 4 --poll
ok $? "poll mode runs" "$dir/poll.err"
check_json "$dir/poll.json" "$keys and j['iops'] > 0 and j['errors'] == 0 and j['mode'] == 'poll'"
ok $? "poll report: keys, iops > 0"

# Paced: 200 requests/s for 1 s.  Unpaced, this back end does tens of
# thousands; the bound only tells pacing from no pacing.
run rate --queue-depth 1 --rate 200
ok $? "paced mode runs" "$dir/rate.err"
check_json "$dir/rate.json" "$keys and j['rate_limit'] == 200 and 0 < j['iops'] < 1000 and j['errors'] == 0"
ok $? "paced report: rate_limit recorded, IOPS held well below the back end's pace"

run mix --queues 2 --rw randrw --block-size 8192 --queue-depth 16 --no-indirect --backend-pid $$
ok $? "2 queues, randrw, 8 KiB, direct descriptors, --backend-pid" "$dir/mix.err"
check_json "$dir/mix.json" "$keys and j['queues'] == 2 and j['reads'] > 0 and j['writes'] > 0 and j['errors'] == 0 \
and not j['indirect'] and j['backend_pid'] == $$ and abs(j['mbps'] - j['iops'] * 8192 / 1e6) < 0.01 * j['mbps'] + 0.01"
ok $? "randrw report: reads and writes, MB/s = IOPS x 8 KiB"

timeout 60 "$bench" --socket "$sock" --duration 0.5 --warmup 0 >"$dir/text.out" 2>&1 &&
	grep -q '^  IOPS ' "$dir/text.out" && grep -q 'p99.9' "$dir/text.out"
ok $? "text report" "$dir/text.out"

timeout 20 "$bench" --socket "$dir/nobody.sock" --connect-timeout 0 --duration 1 \
	>"$dir/bad.out" 2>&1
st=$?
[ "$st" -ne 0 ] && [ "$st" -ne 124 ] && grep -q 'connect' "$dir/bad.out"
ok $? "missing socket: fails fast with an error" "$dir/bad.out"

# A back end that dies mid-run fails the run (bounded), not a quiet report.
"$blk" --socket-path "$dir/dying.sock" --null >"$dir/dying.log" 2>&1 &
dying=$!
for _ in $(seq 100); do
	[ -S "$dir/dying.sock" ] && break
	sleep 0.1
done
timeout 30 "$bench" --socket "$dir/dying.sock" --duration 20 --warmup 0 --json \
	>"$dir/dying.json" 2>"$dir/dying.err" &
runner=$!
sleep 0.5
kill -9 "$dying"
wait "$dying" 2>/dev/null
wait "$runner"
st=$?
[ "$st" -ne 0 ] && [ "$st" -ne 124 ] && [ ! -s "$dir/dying.json" ]
ok $? "back end killed mid-run: vhu-bench fails without a report" "$dir/dying.err"

[ "$failed" -eq 0 ]
