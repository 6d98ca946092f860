/* Shared fixture of the store unit tests: a SQLite store in a new temporary
 * folder. Include it after cmocka.h. Every function is static inline, so
 * each test binary takes only what it uses. */
#ifndef NIMDECK_TESTS_STORE_FIXTURE_H
#define NIMDECK_TESTS_STORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"

typedef struct {
    char dir[64];        /* /tmp/nimdeck-NAME-XXXXXX */
    char db_path[128];   /* dir/nimdeck.db */
    store_t *st;
} fixture_t;

/* Open a store in a new folder /tmp/nimdeck-NAME-XXXXXX and put the fixture
 * in *state. Returns 0, or -1 when it cannot be made. */
static inline int store_fixture_setup(void **state, const char *name)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char err[256];

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/nimdeck-%s-XXXXXX", name);
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->db_path, sizeof(f->db_path), "%s/nimdeck.db", f->dir);
    f->st = store_open_sqlite(f->db_path, err, sizeof(err));
    if (f->st == NULL) {
        fprintf(stderr, "open failed: %s\n", err);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

/* Close the store and remove its folder with everything in it. */
static inline int store_fixture_teardown(void **state)
{
    fixture_t *f = *state;
    char cmd[160];

    store_close(f->st);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", f->dir);
    free(f);
    return 0;
}

#endif
