#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# vhu-fs versus QEMU's built-in 9p, in the same guest, in the same run:
# one QEMU with both a vhost-user-fs-pci device (vhu-fs, its defaults) and a
# virtio-9p-pci device (-fsdev local, security_model=passthrough), each
# sharing its own empty directory on the same host file system.  The guest
# mounts both (virtiofs; 9p with version=9p2000.L, msize=512 KiB, its
# default cache=none) and runs, round after round, alternating which goes
# first:
#   seq-write   fio, 1 MiB writes, O_DIRECT, SIZE MiB, psync        MB/s
#   seq-read    fio, 1 MiB reads of that file, O_DIRECT (caches dropped) MB/s
#   rand-read   fio, 4 KiB random reads of it, O_DIRECT, psync, T s  IOPS
#   meta        create + stat + unlink of N files (fsguest meta)     files/s
# O_DIRECT keeps the guest's page cache out of the data tests: they measure
# the path to the host on both sides.  The table gives the median of the
# rounds, the spread (min..max) and the ratio vhu-fs / 9p of the medians.
#
#   bench/fs/bench.sh [-b BUILD] [-r ROUNDS] [-s MiB] [-t SECONDS] [-n FILES] [-m]
#     -b  meson build dir with devices/fs/vhu-fs (default ./build)
#     -r  rounds (default 5)          -s  file size for the data tests (64)
#     -t  random-read seconds (5)     -n  files for meta (10000)
#     -m  print the table as Markdown (docs/performance.md)
# Environment: VHU_E2E_ACCEL (tcg), VHU_E2E_MEM (1G), BENCH_CPUS (1),
#   VHU_FS_ARGS (extra vhu-fs options).
# Runs under TCG unless told otherwise: the guest's CPU is emulated, so the
# figures are the whole path as such a guest sees it, not bare-metal speed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$here/../..
build=$top/build
rounds=5
size=64
secs=5
nfiles=10000
md=
while getopts "b:r:s:t:n:mh" opt; do
	case $opt in
	b) build=$OPTARG ;;
	r) rounds=$OPTARG ;;
	s) size=$OPTARG ;;
	t) secs=$OPTARG ;;
	n) nfiles=$OPTARG ;;
	m) md=1 ;;
	*) sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//; /^set -u/d'; exit 2 ;;
	esac
done
. "$top/tests/e2e/fs/common.sh" "$build/devices/fs/vhu-fs"

e2e_init fs-bench
e2e_need_tools
e2e_apt_install_missing fio fio
e2e_fetch_kernel
fs_build_guest
SHARE="$E2E_WORK/vfs"
SHARE9P="$E2E_WORK/9p"
SOCK="$E2E_WORK/fs.sock"
mkdir -p "$SHARE" "$SHARE9P"

sed -e "s/@ROUNDS@/$rounds/; s/@SIZE@/$size/; s/@SECS@/$secs/; s/@N@/$nfiles/" \
	>"$E2E_WORK/guest.sh" <<'GUEST'
ROUNDS=@ROUNDS@ SIZE=@SIZE@ SECS=@SECS@ N=@N@
mkdir -p /mnt/vfs /mnt/9p
mount -t virtiofs share /mnt/vfs || { echo "guest: FAIL: virtiofs"; exit 1; }
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 p9 /mnt/9p ||
	{ echo "guest: FAIL: 9p"; exit 1; }
# fio terse v3: 7/8 read KiB/s and IOPS, 48/49 write KiB/s and IOPS.
field() { tr ';' '\n' | sed -n "${1}p"; }
one() { # fs test
	d=/mnt/$1
	case $2 in
	seq-write)
		v=$(fio --name=w --filename=$d/data --rw=write --bs=1M --size=${SIZE}M --direct=1 \
			--ioengine=psync --end_fsync=1 --output-format=terse | field 48)
		echo "BENCH $r $1 $2 $((v * 1024 / 1000000)) MB/s" ;;
	seq-read)
		sync; echo 3 >/proc/sys/vm/drop_caches
		v=$(fio --name=r --filename=$d/data --rw=read --bs=1M --size=${SIZE}M --direct=1 \
			--ioengine=psync --output-format=terse | field 7)
		echo "BENCH $r $1 $2 $((v * 1024 / 1000000)) MB/s" ;;
	rand-read)
		v=$(fio --name=rr --filename=$d/data --rw=randread --bs=4k --size=${SIZE}M --direct=1 \
			--ioengine=psync --runtime=$SECS --time_based --output-format=terse | field 8)
		echo "BENCH $r $1 $2 $v IOPS" ;;
	meta)
		v=$(/fsguest meta $d $N | sed -n 's/.*: \([0-9]*\) files\/s/\1/p')
		echo "BENCH $r $1 $2 $v files/s" ;;
	esac
}
r=1
while [ $r -le $ROUNDS ]; do
	if [ $((r % 2)) = 1 ]; then order="vfs 9p"; else order="9p vfs"; fi
	for t in seq-write seq-read rand-read meta; do
		for f in $order; do one $f $t; done
	done
	for f in vfs 9p; do rm -f /mnt/$f/data; done
	r=$((r + 1))
done
echo "guest: bench done"
GUEST

E2E_INITRAMFS_FILES="$FSGUEST:/fsguest $(e2e_dynamic_files fio | tr '\n' ' ')"
e2e_build_initramfs "$E2E_WORK/initrd" "$E2E_WORK/guest.sh" $FS_MODULES 9pnet_virtio 9p
E2E_INITRD="$E2E_WORK/initrd"

# shellcheck disable=SC2086
fs_start vhu-fs.log ${VHU_FS_ARGS:-}
VHU_E2E_MEM=${VHU_E2E_MEM:-1G} fs_qemu "$E2E_WORK/console.log" 3600 "${BENCH_CPUS:-1}" \
	-fsdev "local,id=p9,path=$SHARE9P,security_model=passthrough" \
	-device virtio-9p-pci,fsdev=p9,mount_tag=p9 ||
	e2e_fail "guest failed"
fs_stop_checked vhu-fs.log >/dev/null 2>&1

python3 - "$E2E_WORK/console.log" "$md" "$rounds" "$size" "$secs" "$nfiles" \
	"${VHU_E2E_ACCEL:-tcg}" "$(nproc)" "$(uptime | sed 's/.*load average: //')" <<'PY'
import statistics, sys
log, md, rounds, size, secs, n, accel, ncpu, load = sys.argv[1:]
res = {}
for line in open(log, errors="replace"):
    p = line.split()
    if len(p) == 6 and p[0] == "BENCH":
        res.setdefault((p[3], p[2]), []).append(int(p[4]))
        res[("unit", p[3])] = p[5]
tests = ["seq-write", "seq-read", "rand-read", "meta"]
rows = []
for t in tests:
    v, q = res.get((t, "vfs"), []), res.get((t, "9p"), [])
    if not v or not q:
        continue
    mv, mq = statistics.median(v), statistics.median(q)
    rows.append((t, res[("unit", t)], mv, min(v), max(v), mq, min(q), max(q),
                 mv / mq if mq else float("inf")))
print(f"# vhu-fs vs QEMU 9p: {rounds} rounds, {size} MiB files, {secs} s random reads, "
      f"{n} files; accel {accel}, host {ncpu} CPUs, load {load}")
if md:
    print("| test | unit | vhu-fs median (min..max) | 9p median (min..max) | vhu-fs / 9p |")
    print("| --- | --- | --- | --- | --- |")
    for t, u, mv, lv, hv, mq, lq, hq, r in rows:
        print(f"| {t} | {u} | {mv:g} ({lv}..{hv}) | {mq:g} ({lq}..{hq}) | **{r:.2f}x** |")
else:
    print(f"{'test':<10} {'unit':<8} {'vhu-fs':>24} {'9p':>24} {'ratio':>7}")
    for t, u, mv, lv, hv, mq, lq, hq, r in rows:
        print(f"{t:<10} {u:<8} {f'{mv:g} ({lv}..{hv})':>24} {f'{mq:g} ({lq}..{hq})':>24} "
              f"{r:>6.2f}x")
if len(rows) != len(tests):
    sys.exit("missing results (see the console log)")
PY
