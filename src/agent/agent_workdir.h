/* Private working directories of process instances: one fresh directory per
 * instance, mode 0700, removed when the instance ends. */
#ifndef NIMDECK_AGENT_AGENT_WORKDIR_H
#define NIMDECK_AGENT_AGENT_WORKDIR_H

#include <stddef.h>

/* Every working directory's name starts with this. */
#define AGENT_WORKDIR_PREFIX "nimdeck-"

/* Create "nimdeck-AGENT-INSTANCE-XXXXXX" (XXXXXX random, as mkdtemp makes
 * it) with mode 0700 under $TMPDIR when that is an absolute path, else
 * under /tmp. Characters of the two names outside [A-Za-z0-9._-] become '_'.
 * The random suffix keeps another user of a shared /tmp from creating the
 * directory first. Returns 0 with the path in out, or -1 with err naming
 * the failure. */
int agent_workdir_create(const char *agent_name, const char *instance_id, char *out,
                         size_t out_size, char *err, size_t err_size);

/* Remove path and everything under it without following symbolic links: a
 * link inside is removed, never what it points to, and a path that is
 * itself a link is removed as a link. Removes what it can and returns 0, or
 * -1 with errno of the first failure (a missing path is not one). */
int agent_workdir_remove(const char *path);

#endif
