/* Output helpers for the client commands: JSON, times, durations, tables. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli_internal.h"
#include "util/clock.h"

void cli_print_json(const json_t *value)
{
    char *text;

    if (value == NULL) {
        fputs("null\n", stdout);
        return;
    }
    text = cli_json_text(value, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text == NULL) {
        fprintf(stderr, "error: out of memory formatting the server's response as JSON\n");
        return;
    }
    fputs(text, stdout);
    fputc('\n', stdout);
    free(text);
}

void cli_format_time(const json_t *ms, char *out, size_t size)
{
    if (!json_is_number(ms)) {
        snprintf(out, size, "-");
        return;
    }
    clock_format_rfc3339((int64_t)json_number_value(ms), out, size);
}

void cli_format_duration(double seconds, char *out, size_t size)
{
    if (seconds < 0)
        seconds = 0;
    long total = (long)seconds;

    if (total < 60)
        snprintf(out, size, "%lds", total);
    else if (total < 3600)
        snprintf(out, size, "%ldm%02lds", total / 60, total % 60);
    else if (total < 86400)
        snprintf(out, size, "%ldh%02ldm", total / 3600, (total % 3600) / 60);
    else
        snprintf(out, size, "%ldd%02ldh", total / 86400, (total % 86400) / 3600);
}

const char *cli_string_or(const json_t *value, const char *fallback)
{
    const char *text = json_string_value(value);
    return text != NULL ? text : fallback;
}

void cli_table_init(cli_table_t *table, size_t columns)
{
    memset(table, 0, sizeof(*table));
    table->columns = columns > 0 ? columns : 1;
}

int cli_table_add(cli_table_t *table, const char *cell)
{
    if (table->count == table->cap) {
        size_t cap = table->cap ? table->cap * 2 : table->columns * 16;
        char **cells = realloc(table->cells, cap * sizeof(*cells));
        if (cells == NULL)
            return -1;
        table->cells = cells;
        table->cap = cap;
    }

    table->cells[table->count] = strdup(cell != NULL ? cell : "");
    if (table->cells[table->count] == NULL)
        return -1;
    table->count++;
    return 0;
}

void cli_table_print(const cli_table_t *table, FILE *out)
{
    size_t widths[32] = {0};
    size_t columns = table->columns < 32 ? table->columns : 32;

    size_t rows = (table->count + table->columns - 1) / table->columns;

    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < columns; c++) {
            size_t index = r * table->columns + c;
            const char *cell = index < table->count ? table->cells[index] : "";
            size_t len = strlen(cell);
            if (len > widths[c])
                widths[c] = len;
        }
    }

    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < columns; c++) {
            size_t index = r * table->columns + c;
            const char *cell = index < table->count ? table->cells[index] : "";
            if (c + 1 == columns)
                fprintf(out, "%s\n", cell);
            else
                fprintf(out, "%-*s  ", (int)widths[c], cell);
        }
    }
}

void cli_table_free(cli_table_t *table)
{
    for (size_t i = 0; i < table->count; i++)
        free(table->cells[i]);
    free(table->cells);
    memset(table, 0, sizeof(*table));
}

static void cli_format_cell(const json_t *value, cli_cell_kind_t kind, char *out, size_t size)
{
    size_t used = 0;
    size_t i;
    json_t *item;

    switch (kind) {
    case CLI_CELL_TIME:
        cli_format_time(value, out, size);
        return;
    case CLI_CELL_NUMBER:
        if (json_is_integer(value))
            snprintf(out, size, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        else if (json_is_number(value))
            snprintf(out, size, "%g", json_number_value(value));
        else
            snprintf(out, size, "-");
        return;
    case CLI_CELL_SECONDS:
        if (json_is_number(value))
            cli_format_duration(json_number_value(value), out, size);
        else
            snprintf(out, size, "-");
        return;
    case CLI_CELL_MILLISECONDS:
        if (json_is_number(value))
            snprintf(out, size, "%.1f ms", json_number_value(value));
        else
            snprintf(out, size, "-");
        return;
    case CLI_CELL_BOOL:
        snprintf(out, size, "%s", json_is_true(value) ? "yes" : "no");
        return;
    case CLI_CELL_LIST:
        out[0] = '\0';
        json_array_foreach(value, i, item) {
            int n = snprintf(out + used, size - used, "%s%s", i ? "," : "", cli_string_or(item, "?"));
            if (n < 0 || (size_t)n >= size - used)
                break;
            used += (size_t)n;
        }
        if (out[0] == '\0')
            snprintf(out, size, "-");
        return;
    case CLI_CELL_STRING:
        snprintf(out, size, "%s", cli_string_or(value, "-"));
        return;
    }
}

void cli_print_rows(const json_t *rows, const cli_column_t *columns)
{
    cli_table_t table;
    size_t count = 0, i;
    json_t *row;
    char cell[1024];

    while (columns[count].header != NULL)
        count++;
    cli_table_init(&table, count);
    for (size_t c = 0; c < count; c++)
        cli_table_add(&table, columns[c].header);

    json_array_foreach(rows, i, row) {
        for (size_t c = 0; c < count; c++) {
            buf_t visible = BUF_INIT;

            /* Cells hold server text, so each is made safe for a terminal. */
            cli_format_cell(json_object_get(row, columns[c].key), columns[c].kind, cell, sizeof(cell));
            cli_append_visible(&visible, cell, NULL);
            cli_table_add(&table, visible.data != NULL ? visible.data : "");
            buf_free(&visible);
        }
    }
    cli_table_print(&table, stdout);
    cli_table_free(&table);
}
