/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The migrating guest's workload (static, runs in the e2e initramfs), and
 * its two host-side counterparts.
 *
 *   migguest DEV THREADS MIB HOST PORT       in the guest
 *   migguest --send IP PORT STOPFILE         on the host: the stream
 *   migguest --expect IMAGE MIB              on the host: the final image
 *
 * Disk: THREADS threads (pinned to CPUs, so to different virtio-blk
 * queues) each own a stripe of the first MIB MiB of DEV and go round it in
 * 64 KiB blocks: write the block with a new generation (O_DIRECT), read it
 * back (O_DIRECT) and check every byte.  A block's bytes encode (block,
 * generation, offset), so a read buffer the back end filled but the
 * migration did not carry (a page it wrote without logging) holds another
 * block's or generation's bytes and is caught.
 *
 * Network: one thread receives a TCP stream from HOST:PORT made of records
 * {magic, seq, len, sum} + len payload bytes derived from seq, and checks
 * each.  A record of length 0 ends the run: the disk threads stop, every
 * block is read back and checked against the last generation written,
 * then the whole area is written with the final generation (FINAL_GEN)
 * for the host to compare the image file.
 *
 * Progress lines "mig: ..." every ~2 s; "mig: PASS ..." or "mig: FAIL ...".
 * Exit status 0 only on PASS.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BLOCK     65536u
#define MAXT      8
#define FINAL_GEN 0xf1a1u
#define MAGIC     0x4d494752u /* "MIGR" */
#define RECMAX    65536u

static const char *dev;
static unsigned nthreads, nblocks;
static uint32_t *gens; /* last generation written per block */
static atomic_bool stop, failed;
static atomic_ullong blk_ops, net_bytes, net_recs;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("mig: FAIL ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	atomic_store(&failed, true);
	atomic_store(&stop, true);
}

/* Byte i of block b, generation g (shared with the host's image check). */
static inline uint8_t pat(uint64_t b, uint32_t g, uint64_t i)
{
	uint64_t x =
	    (b * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)g << 32) ^ (i / 8) * 0xbf58476d1ce4e5b9ull;

	x ^= x >> 31;
	return (uint8_t)(x >> (8 * (i % 8)));
}

static void fill(uint8_t *p, uint64_t b, uint32_t g)
{
	for (uint64_t i = 0; i < BLOCK; i++)
		p[i] = pat(b, g, i);
}

/* Index of the first byte that differs, or BLOCK. */
static uint64_t check(const uint8_t *p, uint64_t b, uint32_t g)
{
	for (uint64_t i = 0; i < BLOCK; i++)
		if (p[i] != pat(b, g, i))
			return i;
	return BLOCK;
}

static int io(int fd, void *buf, uint64_t b, bool wr)
{
	ssize_t n = wr ? pwrite(fd, buf, BLOCK, (off_t)(b * BLOCK))
	               : pread(fd, buf, BLOCK, (off_t)(b * BLOCK));

	return n == (ssize_t)BLOCK ? 0 : -1;
}

static void *disk_thread(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	unsigned first = nblocks * t / nthreads, last = nblocks * (t + 1) / nthreads;
	uint8_t *w = aligned_alloc(4096, BLOCK), *r = aligned_alloc(4096, BLOCK);
	int fd = open(dev, O_RDWR | O_DIRECT);
	cpu_set_t cpus;

	CPU_ZERO(&cpus);
	CPU_SET(t % (unsigned)sysconf(_SC_NPROCESSORS_ONLN), &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus);
	if (fd < 0 || !w || !r) {
		fail("disk thread %u: open %s: %s", t, dev, strerror(errno));
		return NULL;
	}
	for (unsigned b = first; !atomic_load(&stop); b = b + 1 < last ? b + 1 : first) {
		uint32_t g = gens[b] + 1;
		uint64_t bad;

		fill(w, b, g);
		if (io(fd, w, b, true)) {
			fail("write block %u gen %u: %s", b, g, strerror(errno));
			break;
		}
		gens[b] = g;
		memset(r, 0xee, BLOCK);
		if (io(fd, r, b, false)) {
			fail("read block %u gen %u: %s", b, g, strerror(errno));
			break;
		}
		bad = check(r, b, g);
		if (bad != BLOCK) {
			fail("block %u gen %u differs at byte %llu", b, g, (unsigned long long)bad);
			break;
		}
		atomic_fetch_add(&blk_ops, 1);
	}
	close(fd);
	free(w);
	free(r);
	return NULL;
}

/* Record payload byte i of record seq. */
static inline uint8_t rec_byte(uint64_t seq, uint32_t i)
{
	return (uint8_t)((seq * 2654435761u) >> (i % 24)) ^ (uint8_t)(i * 131);
}

/* All of len bytes through socket s, in (recv) or out (send). */
static int xfer(int s, void *buf, size_t len, bool out)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = out ? send(s, p, len, MSG_NOSIGNAL) : recv(s, p, len, 0);

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int connect_host(const char *host, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

	inet_pton(AF_INET, host, &a.sin_addr);
	for (int i = 0; i < 600; i++) {
		int s = socket(AF_INET, SOCK_STREAM, 0);

		if (s >= 0 && connect(s, (struct sockaddr *)&a, sizeof(a)) == 0)
			return s;
		if (s >= 0)
			close(s);
		usleep(100000);
	}
	return -1;
}

struct net_args {
	const char *host;
	int port;
};

static void *net_thread(void *arg)
{
	struct net_args *na = arg;
	static uint8_t payload[RECMAX];
	int s = connect_host(na->host, na->port);
	uint64_t want = 0;

	if (s < 0) {
		fail("cannot connect to %s:%d", na->host, na->port);
		return NULL;
	}
	while (!atomic_load(&stop)) {
		uint32_t h[4]; /* magic, seq, len, sum */
		uint32_t sum = 0;

		if (xfer(s, h, sizeof(h), false)) {
			fail("stream broken after record %llu (%llu bytes)",
			     (unsigned long long)want, atomic_load(&net_bytes));
			break;
		}
		if (h[0] != MAGIC || h[1] != (uint32_t)want || h[2] > RECMAX) {
			fail("record %llu: bad header (seq %u len %u)", (unsigned long long)want,
			     h[1], h[2]);
			break;
		}
		if (h[2] == 0) { /* end of the run */
			atomic_store(&stop, true);
			break;
		}
		if (xfer(s, payload, h[2], false)) {
			fail("stream broken inside record %llu", (unsigned long long)want);
			break;
		}
		for (uint32_t i = 0; i < h[2]; i++) {
			if (payload[i] != rec_byte(want, i)) {
				fail("record %llu byte %u differs (len %u)",
				     (unsigned long long)want, i, h[2]);
				break;
			}
			sum += payload[i];
		}
		if (sum != h[3] && !atomic_load(&failed))
			fail("record %llu checksum %u != %u", (unsigned long long)want, sum, h[3]);
		atomic_fetch_add(&net_bytes, h[2]);
		atomic_fetch_add(&net_recs, 1);
		want++;
	}
	/* Tell the host how far we got (it checks it sent that much). */
	{
		char line[64];
		int n = snprintf(line, sizeof(line), "received %llu\n",
		                 (unsigned long long)atomic_load(&net_recs));

		if (send(s, line, (size_t)n, 0) < 0)
			printf("mig: cannot report to the host\n");
	}
	close(s);
	return NULL;
}

/* Every block must hold its last generation; then the final one goes in. */
static void final_pass(void)
{
	uint8_t *buf = aligned_alloc(4096, BLOCK);
	int fd = open(dev, O_RDWR | O_DIRECT);

	if (fd < 0 || !buf) {
		fail("final pass: open %s: %s", dev, strerror(errno));
		return;
	}
	for (unsigned b = 0; b < nblocks && !atomic_load(&failed); b++) {
		uint64_t bad;

		if (io(fd, buf, b, false)) {
			fail("final read of block %u: %s", b, strerror(errno));
			break;
		}
		bad = check(buf, b, gens[b]);
		if (bad != BLOCK)
			fail("block %u: gen %u lost (byte %llu)", b, gens[b],
			     (unsigned long long)bad);
		fill(buf, b, FINAL_GEN);
		if (io(fd, buf, b, true))
			fail("final write of block %u: %s", b, strerror(errno));
	}
	if (fdatasync(fd))
		fail("flush failed: %s", strerror(errno));
	close(fd);
	free(buf);
}

/* ---- host side ------------------------------------------------------------ */

/* Serve one guest: records until STOPFILE exists, then the end record;
 * the guest answers with how many it received, which must be all. */
static int host_send(const char *ip, int port, const char *stopfile)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	static uint8_t payload[RECMAX];
	int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0), s;
	uint64_t seq = 0;
	char line[64] = {0};

	inet_pton(AF_INET, ip, &a.sin_addr);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 1)) {
		perror("migguest --send: listen");
		return 1;
	}
	printf("sender: listening on %s:%d\n", ip, port);
	fflush(stdout);
	s = accept(ls, NULL, NULL);
	if (s < 0)
		return 1;
	while (access(stopfile, F_OK) != 0) {
		uint32_t len = 1000 + (uint32_t)(seq * 7919 % 15000), sum = 0, h[4];

		for (uint32_t i = 0; i < len; i++)
			sum += payload[i] = rec_byte(seq, i);
		h[0] = MAGIC;
		h[1] = (uint32_t)seq;
		h[2] = len;
		h[3] = sum;
		if (xfer(s, h, sizeof(h), true) || xfer(s, payload, len, true)) {
			printf("sender: connection lost after %llu records\n",
			       (unsigned long long)seq);
			return 1;
		}
		seq++;
	}
	{
		uint32_t h[4] = {MAGIC, (uint32_t)seq, 0, 0};

		if (xfer(s, h, sizeof(h), true))
			return 1;
	}
	for (size_t n = 0; n < sizeof(line) - 1 && recv(s, line + n, 1, 0) == 1 && line[n] != '\n';
	     n++)
		;
	printf("sender: sent %llu records; guest: %s", (unsigned long long)seq, line);
	return strtoull(line + 9, NULL, 10) == seq ? 0 : 1;
}

/* The image holds FINAL_GEN in every block of the first MIB MiB. */
static int host_expect(const char *image, unsigned mib)
{
	uint8_t *buf = malloc(BLOCK);
	int fd = open(image, O_RDONLY);
	unsigned n = mib * (1048576u / BLOCK);

	if (fd < 0 || !buf)
		return 1;
	for (unsigned b = 0; b < n; b++) {
		uint64_t bad;

		if (pread(fd, buf, BLOCK, (off_t)b * BLOCK) != (ssize_t)BLOCK) {
			printf("image: short read at block %u\n", b);
			return 1;
		}
		bad = check(buf, b, FINAL_GEN);
		if (bad != BLOCK) {
			printf("image: block %u differs at byte %llu\n", b,
			       (unsigned long long)bad);
			return 1;
		}
	}
	printf("image: %u blocks hold what the guest wrote last\n", n);
	return 0;
}

int main(int argc, char **argv)
{
	pthread_t th[MAXT], nt;
	struct net_args na;
	time_t last = time(NULL);

	if (argc == 5 && !strcmp(argv[1], "--send"))
		return host_send(argv[2], atoi(argv[3]), argv[4]);
	if (argc == 4 && !strcmp(argv[1], "--expect"))
		return host_expect(argv[2], (unsigned)atoi(argv[3]));
	if (argc != 6) {
		fprintf(stderr, "usage: migguest DEV THREADS MIB HOST PORT\n");
		return 2;
	}
	dev = argv[1];
	nthreads = (unsigned)atoi(argv[2]);
	nblocks = (unsigned)(atoi(argv[3]) * (1048576u / BLOCK));
	na.host = argv[4];
	na.port = atoi(argv[5]);
	if (nthreads < 1 || nthreads > MAXT || nblocks < nthreads)
		return 2;
	gens = calloc(nblocks, sizeof(*gens));
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (unsigned t = 0; t < nthreads; t++)
		pthread_create(&th[t], NULL, disk_thread, (void *)(uintptr_t)t);
	pthread_create(&nt, NULL, net_thread, &na);
	printf("mig: running\n");
	while (!atomic_load(&stop)) {
		usleep(200000);
		if (time(NULL) - last >= 2) {
			last = time(NULL);
			printf("mig: blk %llu net %llu records %llu bytes\n", atomic_load(&blk_ops),
			       atomic_load(&net_recs), atomic_load(&net_bytes));
		}
	}
	for (unsigned t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);
	pthread_join(nt, NULL);
	if (!atomic_load(&failed))
		final_pass();
	if (atomic_load(&failed))
		return 1;
	printf("mig: PASS blk %llu net %llu records %llu bytes\n", atomic_load(&blk_ops),
	       atomic_load(&net_recs), atomic_load(&net_bytes));
	return 0;
}
