/* The table of UI files embedded in the binary, written at build time into
 * BUILD/gen/web_assets.c by scripts/web-assets.sh. */
#ifndef NIMDECK_WEB_WEB_ASSETS_H
#define NIMDECK_WEB_WEB_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *name;             /* relative to web/, e.g. "lib/api.js" */
    const unsigned char *data;
    size_t len;
} web_asset_t;

extern const web_asset_t web_assets[];
extern const size_t web_assets_count;

#endif
