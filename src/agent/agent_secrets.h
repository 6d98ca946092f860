/* The secrets of one lease: the values its console lines are masked with,
 * and the variables whose values are too short to mask. */
#ifndef NIMDECK_AGENT_AGENT_SECRETS_H
#define NIMDECK_AGENT_AGENT_SECRETS_H

#include <jansson.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/mask.h"

/* Build a mask set and a NULL-terminated list of the non-empty strings in
 * the lease's "secrets" array, plus extra when it is not NULL (the agent's
 * own API token, which must never reach a console line either). The list
 * borrows its strings from lease and extra, which must outlive it. Returns 0
 * with *mask and *values set (free them with mask_set_free and free), or -1
 * when memory runs out, with nothing to free. */
int agent_secrets_collect(const json_t *lease, const char *extra, mask_set_t **mask,
                          const char ***values);

/* Append to names, ", "-separated, every variable of the lease's "env"
 * whose value is a secret shorter than MASK_MIN_LEN bytes, which mask_apply
 * leaves visible. A secret is a value listed in the lease's "secrets" or
 * any value under a secret name (KEY, TOKEN, SECRET, PASSWORD, CREDENTIAL).
 * Empty values are not counted. Returns how many names were appended. */
size_t agent_secrets_unmaskable(const json_t *lease, buf_t *names);

#endif
