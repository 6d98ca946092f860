/* The request records in a gateway's records post, in either form: JSON
 * record objects or compact rows (util/rec_rows.h). */
#ifndef NIMDECK_SERVER_API_RECORDS_H
#define NIMDECK_SERVER_API_RECORDS_H

#include <stddef.h>

#include "server/server_internal.h"

/* Records one post may carry, in both forms together. */
#define API_RECORDS_MAX 10000

/* Check and read the "records" objects and then the "rows" of body into a
 * new array (*records, freed by the caller) whose strings point into body.
 * Every value is checked against the ranges of util/rec_rows.h, and the
 * "instances" and "tokens" lists whenever they are present. Returns 0, or
 * -1 with a 400 in err naming the record and field (and nothing allocated). */
int api_read_records(api_error_t *err, json_t *body, store_record_t **records, size_t *count);

#endif
