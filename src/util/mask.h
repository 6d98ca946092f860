/* Secret masking for console log lines: every occurrence of a known secret
 * value is replaced with "****". */
#ifndef NIMDECK_UTIL_MASK_H
#define NIMDECK_UTIL_MASK_H

#include <stddef.h>

#include "util/buf.h"

typedef struct mask_set mask_set_t;

/* Secrets shorter than this many bytes are NOT masked: they pass through
 * mask_apply unchanged, because hiding every occurrence of a one- to
 * three-byte string would blank ordinary text everywhere. A caller with
 * such a secret must warn its user that the secret can appear in output. */
#define MASK_MIN_LEN 4

mask_set_t *mask_set_new(void);
void mask_set_free(mask_set_t *set);

/* Add a secret value to hide. A value shorter than MASK_MIN_LEN bytes is
 * ignored and stays visible (see MASK_MIN_LEN). Returns 0, or -1 when
 * memory runs out. */
int mask_set_add(mask_set_t *set, const char *value);

/* Append text[0..len) to out with every secret replaced by "****".
 * Occurrences that overlap become one "****"; the longest secret that
 * starts at a position wins. Stateless: a secret split across two calls is
 * not found, so callers mask whole lines (see mask_set_max_len).
 * Returns 0 or -1 when memory runs out. */
int mask_apply(const mask_set_t *set, const char *text, size_t len, buf_t *out);

/* Length in bytes of the longest secret in the set (0 when none): a caller that
 * masks a stream in pieces keeps this many bytes back until more arrive. */
size_t mask_set_max_len(const mask_set_t *set);

#endif
