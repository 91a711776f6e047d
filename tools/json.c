/* SPDX-License-Identifier: Apache-2.0 */
/* The streaming JSON writer (see json.h). */
#include <string.h>
#include "json.h"

void json_init(json_writer *w, FILE *out, int pretty)
{
    memset(w, 0, sizeof(*w));
    w->out = out;
    w->pretty = pretty;
}

static void indent(json_writer *w)
{
    int i;

    if (!w->pretty)
        return;
    fputc('\n', w->out);
    for (i = 0; i < w->depth; i++)
        fputs("  ", w->out);
}

/* Called before every value and key: the comma and the layout. */
static int before_value(json_writer *w)
{
    if (w->depth == 0)
        return 1;
    if (w->kind[w->depth - 1] == 'o') {
        if (!w->have_key) {
            w->error = 1;
            return 0;
        }
        w->have_key = 0;
        return 1;
    }
    if (w->count[w->depth - 1]++ > 0)
        fputc(',', w->out);
    indent(w);
    return 1;
}

static void begin(json_writer *w, char kind)
{
    if (!before_value(w))
        return;
    if (w->depth >= JSON_MAX_DEPTH) {
        w->error = 1;
        return;
    }
    fputc(kind == 'o' ? '{' : '[', w->out);
    w->kind[w->depth] = kind;
    w->count[w->depth] = 0;
    w->depth++;
}

static void end(json_writer *w, char kind)
{
    if (w->depth == 0 || w->kind[w->depth - 1] != kind || w->have_key) {
        w->error = 1;
        return;
    }
    w->depth--;
    if (w->count[w->depth] > 0)
        indent(w);
    fputc(kind == 'o' ? '}' : ']', w->out);
}

void json_begin_object(json_writer *w) { begin(w, 'o'); }
void json_end_object(json_writer *w) { end(w, 'o'); }
void json_begin_array(json_writer *w) { begin(w, 'a'); }
void json_end_array(json_writer *w) { end(w, 'a'); }

static void put_string(json_writer *w, const char *s, size_t len)
{
    size_t i;

    fputc('"', w->out);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        switch (c) {
        case '"': fputs("\\\"", w->out); break;
        case '\\': fputs("\\\\", w->out); break;
        case '\n': fputs("\\n", w->out); break;
        case '\r': fputs("\\r", w->out); break;
        case '\t': fputs("\\t", w->out); break;
        case '\b': fputs("\\b", w->out); break;
        case '\f': fputs("\\f", w->out); break;
        default:
            if (c < 0x20 || c == 0x7f)
                fprintf(w->out, "\\u%04x", c);
            else
                fputc(c, w->out); /* UTF-8 passes through */
        }
    }
    fputc('"', w->out);
}

void json_key(json_writer *w, const char *key)
{
    if (w->depth == 0 || w->kind[w->depth - 1] != 'o' || w->have_key) {
        w->error = 1;
        return;
    }
    if (w->count[w->depth - 1]++ > 0)
        fputc(',', w->out);
    indent(w);
    put_string(w, key, strlen(key));
    fputs(w->pretty ? ": " : ":", w->out);
    w->have_key = 1;
}

void json_string_n(json_writer *w, const char *s, size_t len)
{
    if (before_value(w))
        put_string(w, s, len);
}

void json_string(json_writer *w, const char *s)
{
    if (s == NULL)
        json_null(w);
    else
        json_string_n(w, s, strlen(s));
}

void json_int(json_writer *w, long long v)
{
    if (before_value(w))
        fprintf(w->out, "%lld", v);
}

void json_bool(json_writer *w, int v)
{
    if (before_value(w))
        fputs(v ? "true" : "false", w->out);
}

void json_null(json_writer *w)
{
    if (before_value(w))
        fputs("null", w->out);
}

int json_finish(json_writer *w)
{
    if (w->depth != 0)
        w->error = 1;
    fputc('\n', w->out);
    if (fflush(w->out) != 0 || ferror(w->out))
        w->error = 1;
    return !w->error;
}
