# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=sh
# Guest side of fs_suite.sh (busybox sh): runs the third-party suite in
# directory $1 and prints one "SUITE tool test label status" line per test.
# stress-ng: one instance of each file-system and file-I/O stressor, 20
# bogo operations or 5 s (the same work on every file system; stressors whose
# operation is itself thousands of calls run for 1 s instead), --verify
# where the stressor checks its data; fio: each job of /suite.fio; dbench:
# the client.txt load for 3 s.
dir=$1
label=$2
STRESSORS="access chmod chown copy-file dentry dir dirdeep dirmany dnotify fcntl \
fiemap file-ioctl filename flock fstat getdent handle hdd io iomix lease locka lockf \
lockofd mknod open rename sync-file touch utime xattr aio aiol io-uring readahead \
revio seek"
TIMED="chdir symlink fpunch fallocate inode-flags inotify link chattr fsize"
now() { cut -d' ' -f1 /proc/uptime; }
mkdir -p "$dir/sng" "$dir/fio" "$dir/db"
for s in $STRESSORS $TIMED; do
	case " $TIMED " in
	*" $s "*) bound="--timeout 1" ;;
	*) bound="--$s-ops 20 --timeout 5" ;;
	esac
	t0=$(now)
	timeout 60 stress-ng --"$s" 1 $bound --temp-path "$dir/sng" --verify \
		--hdd-bytes 4m --iomix-bytes 4m --readahead-bytes 4m --seek-size 4m \
		--fallocate-bytes 4m --sync-file-bytes 4m \
		--dirdeep-inodes 2000 >"/tmp/sng-$label-$s.log" 2>&1
	rc=$?
	echo "SUITE stress-ng $s $label $rc $t0 $(now)"
	[ $rc = 0 ] || [ $rc = 3 ] || [ $rc = 4 ] ||
		grep -v "^stress-ng: info" "/tmp/sng-$label-$s.log" | tail -4 | sed "s/^/SUITE-LOG $label $s: /"
done
for j in $(sed -n 's/^\[\(.*\)\]$/\1/p' /suite.fio | grep -v global); do
	t0=$(now)
	timeout 120 fio --section="$j" --directory="$dir/fio" /suite.fio >"/tmp/fio-$label-$j.log" 2>&1
	rc=$?
	echo "SUITE fio $j $label $rc $t0 $(now)"
	[ $rc = 0 ] || grep -i "err\|verify" "/tmp/fio-$label-$j.log" | head -3 | sed "s/^/SUITE-LOG $label $j: /"
done
t0=$(now)
timeout 60 dbench -c /client.txt -D "$dir/db" -t 3 1 >"/tmp/dbench-$label.log" 2>&1
rc=$?
# dbench reports an operation that returned an unexpected status as
# "... failed" or "ERROR" and goes on: count those too.
grep -q "ERROR\|[^0-9] failed" "/tmp/dbench-$label.log" && rc=99
echo "SUITE dbench client.txt $label $rc $t0 $(now)"
[ $rc = 0 ] || grep -v "^ *[0-9]* *[0-9]* *[0-9.]* MB/sec" "/tmp/dbench-$label.log" | tail -5 |
	sed "s/^/SUITE-LOG $label dbench: /"
