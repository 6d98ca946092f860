/* Secret masking: replaces every occurrence of a known secret with "****".
 * Overlapping occurrences are hidden together, so no byte of any secret
 * survives whichever secret matches first. */
#include "util/mask.h"

#include <stdlib.h>
#include <string.h>

#define MASK_TEXT "****"

typedef struct {
    char *value;
    size_t len;
} mask_secret_t;

struct mask_set {
    mask_secret_t *secrets;
    size_t count;
    size_t cap;
    size_t max_len;
    unsigned char first_byte[256]; /* 1 where some secret starts with that byte */
};

mask_set_t *mask_set_new(void)
{
    return calloc(1, sizeof(mask_set_t));
}

void mask_set_free(mask_set_t *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->count; i++) {
        /* The values are secrets: wipe them before the memory is reused. */
        explicit_bzero(set->secrets[i].value, set->secrets[i].len);
        free(set->secrets[i].value);
    }
    free(set->secrets);
    free(set);
}

static int mask_set_contains(const mask_set_t *set, const char *value, size_t len)
{
    for (size_t i = 0; i < set->count; i++) {
        if (set->secrets[i].len == len && memcmp(set->secrets[i].value, value, len) == 0)
            return 1;
    }
    return 0;
}

int mask_set_add(mask_set_t *set, const char *value)
{
    size_t len;

    if (set == NULL || value == NULL)
        return -1;
    len = strlen(value);
    if (len < MASK_MIN_LEN || mask_set_contains(set, value, len))
        return 0;

    if (set->count == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 8;
        mask_secret_t *secrets = realloc(set->secrets, cap * sizeof(*secrets));
        if (secrets == NULL)
            return -1;
        set->secrets = secrets;
        set->cap = cap;
    }

    char *copy = malloc(len + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, value, len + 1);

    set->secrets[set->count].value = copy;
    set->secrets[set->count].len = len;
    set->count++;
    if (len > set->max_len)
        set->max_len = len;
    set->first_byte[(unsigned char)value[0]] = 1;
    return 0;
}

size_t mask_set_max_len(const mask_set_t *set)
{
    return set ? set->max_len : 0;
}

/* End offset of the longest secret that starts at text[pos], or 0. */
static size_t mask_match_end(const mask_set_t *set, const char *text, size_t len, size_t pos)
{
    size_t best = 0;

    if (!set->first_byte[(unsigned char)text[pos]])
        return 0;
    for (size_t i = 0; i < set->count; i++) {
        const mask_secret_t *secret = &set->secrets[i];
        if (secret->len > len - pos || secret->len <= best)
            continue;
        if (memcmp(text + pos, secret->value, secret->len) == 0)
            best = secret->len;
    }
    return best ? pos + best : 0;
}

int mask_apply(const mask_set_t *set, const char *text, size_t len, buf_t *out)
{
    size_t pos = 0, plain = 0;

    if (set == NULL || set->count == 0)
        return buf_append(out, text, len);

    while (pos < len) {
        size_t end = mask_match_end(set, text, len, pos);
        if (end == 0) {
            pos++;
            continue;
        }

        /* Extend over every secret that starts inside this one and reaches
         * past it, so that the tail of an overlapping secret is hidden too. */
        for (size_t inner = pos + 1; inner < end; inner++) {
            size_t inner_end = mask_match_end(set, text, len, inner);
            if (inner_end > end)
                end = inner_end;
        }

        if (buf_append(out, text + plain, pos - plain) != 0 || buf_append_str(out, MASK_TEXT) != 0)
            return -1;
        pos = end;
        plain = end;
    }
    return buf_append(out, text + plain, len - plain);
}
