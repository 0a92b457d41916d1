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
#   seq-write      fio, 1 MiB writes, O_DIRECT, SIZE MiB, psync        MB/s
#   seq-read       fio, 1 MiB reads of that file, O_DIRECT             MB/s
#   seq-write-buf  the same writes through the page cache, then fsync  MB/s
#   seq-read-buf   the same reads through the page cache (dropped first) MB/s
#   rand-read      fio, 4 KiB random reads, O_DIRECT, psync (one at a
#                  time), T s                                          IOPS
#   rand-read-qd16 the same with libaio, 16 in flight                  IOPS
#   meta           create + stat + unlink of N files (fsguest meta)    files/s
# O_DIRECT keeps the guest's page cache out: the path to the host on both
# sides; the -buf rows are what an application sees with each file
# system's defaults (virtiofs: cache=auto, readahead; 9p: cache=none).  The
# table gives the median of the rounds, the spread (min..max) and the
# ratio vhu-fs / 9p of the medians.
#
#   bench/fs/bench.sh [-b BUILD] [-r ROUNDS] [-s MiB] [-t SECONDS] [-n FILES] [-a ARGS]
#                     [-R KiB] [-m]
#     -b  meson build dir with devices/fs/vhu-fs (default ./build)
#     -a  also a second vhu-fs with these extra options (an A/B of two
#         settings in the same guest and run: column "vhu-fs B")
#     -R  the guest's readahead for the B mount (its bdi's read_ahead_kb;
#         Linux gives FUSE 128 KiB); with -R and no -a, B is vhu-fs as is
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
alt=
ra=
while getopts "b:r:s:t:n:a:R:mh" opt; do
	case $opt in
	b) build=$OPTARG ;;
	r) rounds=$OPTARG ;;
	s) size=$OPTARG ;;
	t) secs=$OPTARG ;;
	n) nfiles=$OPTARG ;;
	a) alt=$OPTARG ;;
	R) ra=$OPTARG ;;
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
mkdir -p "$SHARE" "$SHARE9P" "$E2E_WORK/vfsb"
targets="vfs 9p"
two=
[ -n "$alt$ra" ] && targets="vfs 9p vfsb" && two=1
label=$alt
[ -n "$ra" ] && label="$alt${alt:+, }guest read_ahead_kb=$ra"

sed -e "s/@ROUNDS@/$rounds/; s/@SIZE@/$size/; s/@SECS@/$secs/; s/@N@/$nfiles/" \
	-e "s/@TARGETS@/$targets/; s/@RA@/$ra/" \
	>"$E2E_WORK/guest.sh" <<'GUEST'
ROUNDS=@ROUNDS@ SIZE=@SIZE@ SECS=@SECS@ N=@N@ TARGETS="@TARGETS@" RA=@RA@
mkdir -p /mnt/vfs /mnt/9p /mnt/vfsb
mount -t virtiofs share /mnt/vfs || { echo "guest: FAIL: virtiofs"; exit 1; }
case "$TARGETS" in *vfsb*)
	mount -t virtiofs shareb /mnt/vfsb || { echo "guest: FAIL: virtiofs B"; exit 1; }
	if [ -n "$RA" ]; then
		bdi=/sys/class/bdi/$(awk '$5 == "/mnt/vfsb" { print $3 }' /proc/self/mountinfo)/read_ahead_kb
		echo "$RA" >"$bdi" || { echo "guest: FAIL: $bdi"; exit 1; }
		echo "guest: $bdi = $(cat "$bdi")"
	fi ;;
esac
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
	seq-write-buf)
		v=$(fio --name=wb --filename=$d/datab --rw=write --bs=1M --size=${SIZE}M \
			--ioengine=psync --end_fsync=1 --output-format=terse | field 48)
		echo "BENCH $r $1 $2 $((v * 1024 / 1000000)) MB/s" ;;
	seq-read-buf)
		sync; echo 3 >/proc/sys/vm/drop_caches
		v=$(fio --name=rb --filename=$d/datab --rw=read --bs=1M --size=${SIZE}M \
			--ioengine=psync --output-format=terse | field 7)
		echo "BENCH $r $1 $2 $((v * 1024 / 1000000)) MB/s" ;;
	rand-read)
		v=$(fio --name=rr --filename=$d/data --rw=randread --bs=4k --size=${SIZE}M --direct=1 \
			--ioengine=psync --runtime=$SECS --time_based --output-format=terse | field 8)
		echo "BENCH $r $1 $2 $v IOPS" ;;
	rand-read-qd16)
		v=$(fio --name=rq --filename=$d/data --rw=randread --bs=4k --size=${SIZE}M --direct=1 \
			--ioengine=libaio --iodepth=16 --runtime=$SECS --time_based \
			--output-format=terse | field 8)
		echo "BENCH $r $1 $2 $v IOPS" ;;
	meta)
		v=$(/fsguest meta $d $N | sed -n 's/.*: \([0-9]*\) files\/s/\1/p')
		echo "BENCH $r $1 $2 $v files/s" ;;
	esac
}
r=1
while [ $r -le $ROUNDS ]; do
	# Rotate who goes first: each target leads as many rounds.
	order=$TARGETS
	i=1
	while [ $i -lt $r ]; do
		order="${order#* } ${order%% *}"
		i=$((i + 1))
	done
	for t in seq-write seq-read seq-write-buf seq-read-buf rand-read rand-read-qd16 meta; do
		for f in $order; do one $f $t; done
	done
	for f in $TARGETS; do rm -f /mnt/$f/data /mnt/$f/datab; done
	r=$((r + 1))
done
echo "guest: bench done"
GUEST

E2E_INITRAMFS_FILES="$FSGUEST:/fsguest $(e2e_dynamic_files fio | tr '\n' ' ')"
e2e_build_initramfs "$E2E_WORK/initrd" "$E2E_WORK/guest.sh" $FS_MODULES 9pnet_virtio 9p
E2E_INITRD="$E2E_WORK/initrd"

# shellcheck disable=SC2086
fs_start vhu-fs.log ${VHU_FS_ARGS:-}
extra=()
if [ -n "$two" ]; then
	# shellcheck disable=SC2086
	e2e_spawn FS_B_PID "$E2E_WORK/vhu-fs-b.log" "$FS" --socket-path "$E2E_WORK/fsb.sock" \
		--shared-dir "$E2E_WORK/vfsb" ${VHU_FS_ARGS:-} $alt
	e2e_wait_socket "$E2E_WORK/fsb.sock" || e2e_fail "vhu-fs B did not listen"
	extra=(-chardev "socket,id=fs1,path=$E2E_WORK/fsb.sock"
		-device vhost-user-fs-pci,chardev=fs1,tag=shareb)
fi
VHU_E2E_MEM=${VHU_E2E_MEM:-1G} fs_qemu "$E2E_WORK/console.log" 3600 "${BENCH_CPUS:-1}" \
	-fsdev "local,id=p9,path=$SHARE9P,security_model=passthrough" \
	-device virtio-9p-pci,fsdev=p9,mount_tag=p9 "${extra[@]}" ||
	e2e_fail "guest failed"
fs_stop_checked vhu-fs.log >/dev/null 2>&1
[ -z "$two" ] || e2e_stop "$FS_B_PID" || e2e_fail "vhu-fs B did not exit cleanly"

python3 - "$E2E_WORK/console.log" "$md" "$rounds" "$size" "$secs" "$nfiles" \
	"${VHU_E2E_ACCEL:-tcg}" "$(nproc)" "$(uptime | sed 's/.*load average: //')" \
	"${VHU_FS_ARGS:-}" "$label" <<'PY'
import statistics, sys
log, md, rounds, size, secs, n, accel, ncpu, load, args, alt = sys.argv[1:]
res = {}
for line in open(log, errors="replace"):
    p = line.split()
    if len(p) == 6 and p[0] == "BENCH":
        res.setdefault((p[3], p[2]), []).append(int(p[4]))
        res[("unit", p[3])] = p[5]
tests = ["seq-write", "seq-read", "seq-write-buf", "seq-read-buf", "rand-read",
         "rand-read-qd16", "meta"]
def stats(v):
    return statistics.median(v), min(v), max(v)
rows = []
for t in tests:
    v, q, b = (res.get((t, f), []) for f in ("vfs", "9p", "vfsb"))
    if not v or not q or (alt and not b):
        continue
    rows.append((t, res[("unit", t)], stats(v), stats(q), stats(b) if b else None))
print(f"# vhu-fs vs QEMU 9p: {rounds} rounds, {size} MiB files, {secs} s random reads, "
      f"{n} files; accel {accel}, host {ncpu} CPUs, load {load}; vhu-fs args '{args}'"
      + (f", vhu-fs B: '{alt}'" if alt else ""))
def cell(s):
    return f"{s[0]:g} ({s[1]}..{s[2]})"
cols = ["vhu-fs", "9p"] + (["vhu-fs B"] if alt else [])
ratios = ["vhu-fs / 9p"] + (["B / 9p", "B / vhu-fs"] if alt else [])
if md:
    print("| test | unit | " + " | ".join(c + " median (min..max)" for c in cols) + " | "
          + " | ".join(ratios) + " |")
    print("| --- " * (2 + len(cols) + len(ratios)) + "|")
for t, u, v, q, b in rows:
    cells = [cell(v), cell(q)] + ([cell(b)] if b else [])
    rs = [v[0] / q[0]] + ([b[0] / q[0], b[0] / v[0]] if b else [])
    if md:
        print(f"| {t} | {u} | " + " | ".join(cells) + " | "
              + " | ".join(f"**{r:.2f}x**" for r in rs) + " |")
    else:
        print(f"{t:<10} {u:<8} " + " ".join(f"{c:>22}" for c in cells) + " "
              + " ".join(f"{r:>6.2f}x" for r in rs))
if len(rows) != len(tests):
    sys.exit("missing results (see the console log)")
PY
