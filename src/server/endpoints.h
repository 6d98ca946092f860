/* Helpers of the Model Endpoints list (GET /api/v1/endpoints) that need no
 * server: the served model's name and CSV fields. */
#ifndef NIMDECK_SERVER_ENDPOINTS_H
#define NIMDECK_SERVER_ENDPOINTS_H

#include <jansson.h>
#include <stddef.h>

#include "util/buf.h"

/* Return the model id that an instance of config serves: env
 * NIM_SERVED_MODEL_NAME, else the argument of "--model" (or "--model=ID")
 * in command, else the image, else the configuration's name. The result
 * points into config, or is "" when it has none of these. */
const char *endpoints_model(const json_t *config);

/* Append text to out as one CSV field (RFC 4180): quoted when it holds a
 * comma, a quote or a line break, with quotes doubled. A field that starts
 * with = + - @ or a tab gets a leading ' so that a spreadsheet shows it as
 * text instead of running it as a formula. Returns 0, or -1 when out of
 * memory. */
int endpoints_csv_field(buf_t *out, const char *text);

/* Append the CSV of an endpoints response object ({"endpoints": [...],
 * "loading": [...]}) to out: a header row, then one row per entry with a
 * first column "section" that is "endpoints" or "loading". Returns 0, or -1
 * when out of memory. */
int endpoints_csv(buf_t *out, const json_t *response);

#endif
