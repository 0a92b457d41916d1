/* SPDX-License-Identifier: Apache-2.0 */
/* Library diagnostics. Messages go to stderr unless a sink is installed. */
#ifndef VHU_LOG_H
#define VHU_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

enum vhu_log_level { VHU_LOG_ERROR = 0, VHU_LOG_WARN = 1, VHU_LOG_INFO = 2, VHU_LOG_DEBUG = 3 };

typedef void (*vhu_log_sink)(enum vhu_log_level level, const char *msg, void *opaque);

/* Install a sink (NULL restores stderr) and the most verbose level printed
 * (default VHU_LOG_WARN, or VHU_LOG env var: error|warn|info|debug).
 * Thread: call before starting daemons. */
void vhu_log_set_sink(vhu_log_sink sink, void *opaque);
void vhu_log_set_level(enum vhu_log_level level);

/* What starts each line printed to stderr: "PREFIX: message" (default
 * "libvhu"; vhu_program_new() sets the program's name), so that a daemon's
 * lines, its device's and the library's, carry the daemon's name.  A
 * message that already starts with "PREFIX: " is not prefixed twice.
 * Copied (at most 63 bytes); NULL restores the default.  A sink gets the
 * message without prefix.  Thread: call before starting daemons. */
void vhu_log_set_prefix(const char *prefix);

/* Emit a message (printf format). Thread: any. */
void vhu_log(enum vhu_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
