/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest memory: the regions a front end shared with SET_MEM_TABLE and
 * ADD/REM_MEM_REGION, mapped into this process.
 *
 * A struct vhu_mem is an immutable snapshot.  The daemon publishes a new
 * snapshot on every memory update and frees the old one only once no worker
 * thread can still be inside a device callback that started under it and
 * every reference taken with vhu_mem_ref() has been dropped.  So: inside
 * handle_event() the table returned by vhu_vring_mem() is valid without a
 * reference; a request that outlives the callback (asynchronous I/O) takes a
 * reference and drops it when the I/O completed.
 */
#ifndef VHU_MEM_H
#define VHU_MEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vhu_mem;

struct vhu_mem_region_info {
	uint64_t gpa;  /* guest physical start */
	uint64_t size; /* bytes */
	uint64_t uva;  /* front-end virtual start */
	void *hva;     /* where it is mapped here */
};

/* Take / drop a reference on a snapshot. Thread: any. */
struct vhu_mem *vhu_mem_ref(struct vhu_mem *mem);
void vhu_mem_unref(struct vhu_mem *mem);

/* Number of regions and a copy of region i (0 <= i < count). */
unsigned vhu_mem_region_count(const struct vhu_mem *mem);
int vhu_mem_region_get(const struct vhu_mem *mem, unsigned i, struct vhu_mem_region_info *out);

/*
 * Translate [gpa, gpa+len) to a host pointer.  Succeeds only if the whole
 * range lies inside one region (no wrap, no gap); otherwise NULL.
 * *contig (if not NULL) receives how many bytes are contiguous from gpa in
 * that region when the range crosses a region end; the function then still
 * returns NULL.  Thread: any.
 */
void *vhu_mem_gpa_to_hva(const struct vhu_mem *mem, uint64_t gpa, uint64_t len);

/* Same for front-end virtual addresses (vring addresses are in this space). */
void *vhu_mem_uva_to_hva(const struct vhu_mem *mem, uint64_t uva, uint64_t len);

/* Reverse: host pointer inside a mapping back to its guest physical address.
 * Returns 0 and sets *gpa, or -EFAULT. */
int vhu_mem_hva_to_gpa(const struct vhu_mem *mem, const void *hva, uint64_t *gpa);

/*
 * Translate a guest range that may span regions into iovecs.
 * Returns the number of iovecs used, -EFAULT if any byte is unmapped or the
 * range wraps, -ENOBUFS if more than max iovecs would be needed.
 */
int vhu_mem_gpa_to_iov(const struct vhu_mem *mem, uint64_t gpa, uint64_t len, struct iovec *iov,
                       unsigned max);

/* Copy between guest memory and a local buffer; 0 or -EFAULT. */
int vhu_mem_read(const struct vhu_mem *mem, uint64_t gpa, void *buf, size_t len);
int vhu_mem_write(const struct vhu_mem *mem, uint64_t gpa, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
