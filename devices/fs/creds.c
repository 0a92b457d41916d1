/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Creating files as the guest's caller.  setfsuid/setfsgid change the
 * credentials of the calling thread only (the raw system calls: Linux keeps
 * credentials per thread), so a new file gets the caller's owner and the
 * group the host's rules give it: the caller's, or the directory's in a
 * set-group-ID directory.  While fsuid is not 0 the thread has none of the
 * file-system capabilities, so the kernel strips a set-group-ID bit the
 * caller may not set (the class of CVE-2022-0358; the daemon also drops its
 * supplementary groups at start, see sandbox.c).
 */
#include <sys/syscall.h>
#include <unistd.h>

#include "req.h"

static long fsid(long nr, long id)
{
	return syscall(nr, id);
}

void fs_creds_enter(struct fs_creds *saved, uid_t uid, gid_t gid)
{
	saved->uid = (uid_t)fsid(SYS_setfsuid, -1);
	saved->gid = (gid_t)fsid(SYS_setfsgid, -1);
	saved->switched = false;
	if (saved->uid == uid && saved->gid == gid)
		return;
	/* Group first: changing fsuid away from 0 would not drop CAP_SETGID,
	 * but this order never depends on that. */
	fsid(SYS_setfsgid, gid);
	fsid(SYS_setfsuid, uid);
	saved->switched = true;
}

void fs_creds_leave(struct fs_creds *saved)
{
	if (!saved->switched)
		return;
	fsid(SYS_setfsuid, saved->uid);
	fsid(SYS_setfsgid, saved->gid);
	saved->switched = false;
}
