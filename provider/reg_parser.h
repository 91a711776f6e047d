/*
 * The .reg reader's parts, shared only by provider/reg_*.c: the parser
 * state and the functions one part gives the next.  Layers, lowest first:
 * reg_text.c (bytes to lines), reg_keys.c ([KEY] lines), reg_values.c
 * (value lines), reg_file.c (the whole file, emsguard_reg_apply()).
 */
#ifndef EMSGUARD_REG_PARSER_H
#define EMSGUARD_REG_PARSER_H

#include <stddef.h>
#include "internal.h"

typedef enum { TREE_NONE = 0, TREE_SCHANNEL, TREE_SUITE_POLICY } tree;

struct reg_parser {
    EMSGUARD_POLICY *policy;
    const char *name; /* file name for messages */
    int unicode; /* version 5.00: hex(7)/hex(2) data are UTF-16LE */
    tree current; /* subtree of the current [key], or none */
    char relative[800]; /* the current key below its subtree root */
    unsigned long ignored; /* values outside both subtrees */
};

/* ---- reg_text.c ---- */
/* Writes |cp| as UTF-8 into |out| (room for 4); returns the length. */
size_t emsguard_reg_put_utf8(unsigned char *out, unsigned long cp);
/* A UTF-16LE file body as NUL-terminated UTF-8; NULL with an error raised. */
unsigned char *emsguard_reg_utf16le_to_utf8(const unsigned char *in, size_t len,
    size_t *outlen, const char *name);
const char *emsguard_reg_skip_ws(const char *p);
/*
 * The next logical line of the text at *cursor, in place; *first gets its
 * first physical line number, *dangling 1 when a '\' continuation ran into
 * the end of the file.  NULL at the end.
 */
char *emsguard_reg_next_line(char **cursor, unsigned long *lineno, unsigned long *first,
    int *dangling);

/* ---- reg_keys.c ---- */
/* The policy key for value |value| under the current key, or -1. */
int emsguard_reg_value_key(const struct reg_parser *rp, const char *value);
/* A [KEY] or [-KEY] line; 0 with an error raised. */
int emsguard_reg_parse_key_line(struct reg_parser *rp, unsigned long lineno,
    const char *line);

/* ---- reg_values.c ---- */
/* A "Name"=data or @=data line; 0 with an error raised. */
int emsguard_reg_parse_value_line(struct reg_parser *rp, unsigned long lineno,
    const char *line);

#endif /* EMSGUARD_REG_PARSER_H */
