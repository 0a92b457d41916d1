/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device operations with the reference trait's defaults and the daemon's
 * lock mode.  With VHU_LOCK_RWLOCK the split between read and write side
 * follows rust-vmm's `impl VhostUserBackend for RwLock<T>` exactly; with
 * VHU_LOCK_MUTEX every call takes the one mutex (`Mutex<T>`); with
 * VHU_LOCK_NONE nothing is taken (the device synchronises itself).
 */
#include <errno.h>

#include "dev.h"

enum side { RD, WR };

static void lock(struct vhu_backend *be, enum side s)
{
	switch (be->lock) {
	case VHU_LOCK_MUTEX:
		pthread_mutex_lock(&be->mutex);
		break;
	case VHU_LOCK_RWLOCK:
		if (s == WR)
			pthread_rwlock_wrlock(&be->rwlock);
		else
			pthread_rwlock_rdlock(&be->rwlock);
		break;
	default:
		break;
	}
}

static void unlock(struct vhu_backend *be)
{
	switch (be->lock) {
	case VHU_LOCK_MUTEX:
		pthread_mutex_unlock(&be->mutex);
		break;
	case VHU_LOCK_RWLOCK:
		pthread_rwlock_unlock(&be->rwlock);
		break;
	default:
		break;
	}
}

int vhu_be_init(struct vhu_backend *be, const struct vhu_backend_ops *ops, void *dev,
                enum vhu_lock_mode mode)
{
	if (!ops || !ops->handle_event || (!ops->num_queues && !ops->fixed.num_queues) ||
	    (!ops->max_queue_size && !ops->fixed.max_queue_size) ||
	    (!ops->features && !ops->fixed.features))
		return -EINVAL;
	if (mode != VHU_LOCK_NONE && mode != VHU_LOCK_MUTEX && mode != VHU_LOCK_RWLOCK)
		return -EINVAL;
	be->ops = ops;
	be->dev = dev;
	be->lock = mode;
	if (pthread_mutex_init(&be->mutex, NULL))
		return -ENOMEM;
	if (pthread_rwlock_init(&be->rwlock, NULL)) {
		pthread_mutex_destroy(&be->mutex);
		return -ENOMEM;
	}
	return 0;
}

void vhu_be_destroy(struct vhu_backend *be)
{
	pthread_mutex_destroy(&be->mutex);
	pthread_rwlock_destroy(&be->rwlock);
}

/* Call `expr` under the given side of the lock, yielding its value. */
#define LOCKED(be, side, type, expr)                                                               \
	({                                                                                         \
		type r_;                                                                           \
		lock(be, side);                                                                    \
		r_ = (expr);                                                                       \
		unlock(be);                                                                        \
		r_;                                                                                \
	})

#define LOCKED_VOID(be, side, stmt)                                                                \
	do {                                                                                       \
		lock(be, side);                                                                    \
		stmt;                                                                              \
		unlock(be);                                                                        \
	} while (0)

unsigned vhu_be_num_queues(struct vhu_backend *be)
{
	if (!be->ops->num_queues)
		return be->ops->fixed.num_queues;
	return LOCKED(be, RD, unsigned, be->ops->num_queues(be->dev));
}

unsigned vhu_be_max_queue_size(struct vhu_backend *be)
{
	if (!be->ops->max_queue_size)
		return be->ops->fixed.max_queue_size;
	return LOCKED(be, RD, unsigned, be->ops->max_queue_size(be->dev));
}

uint64_t vhu_be_features(struct vhu_backend *be)
{
	if (!be->ops->features)
		return be->ops->fixed.features;
	return LOCKED(be, RD, uint64_t, be->ops->features(be->dev));
}

void vhu_be_acked_features(struct vhu_backend *be, uint64_t features)
{
	if (be->ops->acked_features)
		LOCKED_VOID(be, WR, be->ops->acked_features(be->dev, features));
}

uint64_t vhu_be_protocol_features(struct vhu_backend *be)
{
	if (!be->ops->protocol_features)
		return be->ops->fixed.protocol_features;
	return LOCKED(be, RD, uint64_t, be->ops->protocol_features(be->dev));
}

void vhu_be_reset_device(struct vhu_backend *be)
{
	if (be->ops->reset_device)
		LOCKED_VOID(be, WR, be->ops->reset_device(be->dev));
}

void vhu_be_set_event_idx(struct vhu_backend *be, bool enabled)
{
	if (be->ops->set_event_idx)
		LOCKED_VOID(be, WR, be->ops->set_event_idx(be->dev, enabled));
}

int vhu_be_get_config(struct vhu_backend *be, uint32_t offset, void *buf, uint32_t size)
{
	if (!be->ops->get_config)
		return -ENOTSUP;
	return LOCKED(be, RD, int, be->ops->get_config(be->dev, offset, buf, size));
}

int vhu_be_set_config(struct vhu_backend *be, uint32_t offset, const void *buf, uint32_t size)
{
	if (!be->ops->set_config)
		return 0;
	return LOCKED(be, WR, int, be->ops->set_config(be->dev, offset, buf, size));
}

int vhu_be_update_memory(struct vhu_backend *be, struct vhu_mem *mem)
{
	if (!be->ops->update_memory)
		return 0;
	return LOCKED(be, WR, int, be->ops->update_memory(be->dev, mem));
}

void vhu_be_set_backend_req_fd(struct vhu_backend *be, struct vhu_channel *ch)
{
	if (be->ops->set_backend_req_fd)
		LOCKED_VOID(be, WR, be->ops->set_backend_req_fd(be->dev, ch));
}

int vhu_be_get_shared_object(struct vhu_backend *be, const uint8_t uuid[16])
{
	if (!be->ops->get_shared_object)
		return -ENOTSUP;
	return LOCKED(be, WR, int, be->ops->get_shared_object(be->dev, uuid));
}

int vhu_be_set_gpu_socket(struct vhu_backend *be, int fd)
{
	if (!be->ops->set_gpu_socket)
		return -ENOTSUP;
	return LOCKED(be, WR, int, be->ops->set_gpu_socket(be->dev, fd));
}

int vhu_be_queues_per_thread(struct vhu_backend *be, uint64_t *masks, unsigned max)
{
	if (!be->ops->queues_per_thread) {
		if (max < 1)
			return -EINVAL;
		masks[0] = 0xffffffffu;
		return 1;
	}
	return LOCKED(be, RD, int, be->ops->queues_per_thread(be->dev, masks, max));
}

int vhu_be_exit_event(struct vhu_backend *be, unsigned thread)
{
	if (!be->ops->exit_event)
		return -1;
	return LOCKED(be, RD, int, be->ops->exit_event(be->dev, thread));
}

int vhu_be_handle_event(struct vhu_backend *be, uint16_t device_event, uint32_t evset,
                        struct vhu_vring **vrings, unsigned nvrings, unsigned thread_id)
{
	return LOCKED(
	    be, WR, int,
	    be->ops->handle_event(be->dev, device_event, evset, vrings, nvrings, thread_id));
}

int vhu_be_set_device_state_fd(struct vhu_backend *be, enum vhu_state_direction dir,
                               enum vhu_state_phase phase, int fd, int *reply_fd)
{
	if (!be->ops->set_device_state_fd)
		return -ENOTSUP;
	return LOCKED(be, WR, int, be->ops->set_device_state_fd(be->dev, dir, phase, fd, reply_fd));
}

int vhu_be_check_device_state(struct vhu_backend *be)
{
	if (!be->ops->check_device_state)
		return -ENOTSUP;
	return LOCKED(be, RD, int, be->ops->check_device_state(be->dev));
}

void vhu_be_frontend_connected(struct vhu_backend *be)
{
	if (be->ops->frontend_connected)
		LOCKED_VOID(be, WR, be->ops->frontend_connected(be->dev));
}

void vhu_be_queue_ready(struct vhu_backend *be, unsigned q, unsigned thread_id)
{
	if (be->ops->queue_ready)
		LOCKED_VOID(be, WR, be->ops->queue_ready(be->dev, q, thread_id));
}

void vhu_be_frontend_gone(struct vhu_backend *be, unsigned thread_id)
{
	if (be->ops->frontend_gone)
		LOCKED_VOID(be, WR, be->ops->frontend_gone(be->dev, thread_id));
}

int vhu_be_send_rarp(struct vhu_backend *be, const uint8_t mac[6])
{
	if (!be->ops->send_rarp)
		return -ENOTSUP;
	return LOCKED(be, WR, int, be->ops->send_rarp(be->dev, mac));
}

int vhu_be_set_mtu(struct vhu_backend *be, uint16_t mtu)
{
	if (!be->ops->set_mtu)
		return -ENOTSUP;
	return LOCKED(be, WR, int, be->ops->set_mtu(be->dev, mtu));
}
