/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small streaming JSON writer (FILE * output).
 *
 * Usage: json_init() a writer on a stream, then emit values in document
 * order.  Inside an object, json_key() precedes every value; inside an
 * array, values follow one another.  The writer inserts the commas and
 * indentation itself (two spaces per level; json_init(..., 0) writes one
 * compact line).  Strings are UTF-8: '"', '\\' and control characters are
 * escaped (\n, \t, ..., \u00XX), bytes >= 0x80 pass through unchanged, so
 * valid UTF-8 in gives valid JSON out.
 *
 *   json_writer w;
 *   json_init(&w, stdout, 1);
 *   json_begin_object(&w);
 *   json_key(&w, "name"); json_string(&w, "a\"b");
 *   json_key(&w, "list"); json_begin_array(&w); json_int(&w, 1); json_end_array(&w);
 *   json_end_object(&w);
 *   json_finish(&w);          -- newline; returns 0 if any write failed
 *
 * Nesting deeper than JSON_MAX_DEPTH, a key outside an object or a value
 * without its key are programming errors: they set w->error and are
 * otherwise ignored.
 */
#ifndef EMSGUARD_TOOLS_JSON_H
#define EMSGUARD_TOOLS_JSON_H

#include <stdio.h>

#define JSON_MAX_DEPTH 32

typedef struct {
    FILE *out;
    int pretty;
    int depth;
    int error;
    /* per level: 'o' object, 'a' array; count of members written so far */
    char kind[JSON_MAX_DEPTH];
    int count[JSON_MAX_DEPTH];
    int have_key; /* a key was written, its value is next */
} json_writer;

void json_init(json_writer *w, FILE *out, int pretty);
void json_begin_object(json_writer *w);
void json_end_object(json_writer *w);
void json_begin_array(json_writer *w);
void json_end_array(json_writer *w);
void json_key(json_writer *w, const char *key);
void json_string(json_writer *w, const char *s); /* NULL writes null */
void json_string_n(json_writer *w, const char *s, size_t len);
void json_int(json_writer *w, long long v);
void json_bool(json_writer *w, int v);
void json_null(json_writer *w);
/* Ends the document with a newline and flushes; 1 if all went well. */
int json_finish(json_writer *w);

#endif
