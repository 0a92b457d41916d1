/* SPDX-License-Identifier: Apache-2.0 */
/* libvhu: vhost-user back ends in C.  Include this for everything. */
#ifndef VHU_VHU_H
#define VHU_VHU_H

#include "vhu/backend.h"
#include "vhu/channel.h"
#include "vhu/daemon.h"
#include "vhu/log.h"
#include "vhu/mem.h"
#include "vhu/program.h"
#include "vhu/protocol.h"
#include "vhu/vring.h"

#define VHU_VERSION_STRING "0.1.0"

#endif
