/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The .reg reader's parts, shared only by provider/reg_*.c: the parser
 * state and the functions one part gives the next.  Layers, lowest first:
 * reg_text.c (bytes to lines), reg_suites.c (the two cipher-suite lists),
 * reg_notes.c (what an unmapped value deserves), reg_keys.c ([KEY] lines),
 * reg_values.c (value lines), reg_file.c (the whole file,
 * emsguard_reg_apply()).
 */
#ifndef EMSGUARD_REG_PARSER_H
#define EMSGUARD_REG_PARSER_H

#include <stddef.h>
#include "internal.h"

/*
 * The subtrees that mean anything to OpenSSL: SCHANNEL, and the two
 * cipher-suite lists (the group-policy one, and the local one that
 * Enable-TlsCipherSuite edits).
 */
typedef enum { TREE_NONE = 0, TREE_SCHANNEL, TREE_SUITE_POLICY, TREE_SUITE_LOCAL } tree;

struct reg_parser {
    EMSGUARD_POLICY *policy;
    const char *name; /* file name for messages */
    int unicode; /* version 5.00: hex(7)/hex(2) data are UTF-16LE */
    tree current; /* subtree of the current [key], or none */
    char relative[800]; /* the current key below its subtree root */
    char path[800]; /* the current key, full (HKLM spelled out) */
    unsigned long ignored; /* values outside the subtrees */
    /* Protocols OpenSSL 3 lacks (PCT 1.0, ...), switched off: nothing to do. */
    unsigned long absent_off;
    /*
     * The local cipher-suite list, held until the end of the file: Schannel
     * uses it only when no group-policy list is present (reg_file.c).
     */
    char local_functions[EG_STRING_MAX];
    unsigned long local_line; /* 0: no local list in this file */
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

/* ---- reg_notes.c ---- */
/*
 * A value under SCHANNEL with no OpenSSL meaning, or outside every subtree:
 * counts it or adds the warning it deserves.  |dword| is its DWORD data, or
 * -1 when it has none.
 */
void emsguard_reg_note_unmapped(struct reg_parser *rp, unsigned long lineno,
    const char *vname, long long dword);
/* A value just stored as |key|: the warning a value OpenSSL cannot follow earns. */
void emsguard_reg_note_stored(struct reg_parser *rp, unsigned long lineno, int key);
/* The end of a file: one info line per count. */
void emsguard_reg_note_end(struct reg_parser *rp);

/* ---- reg_suites.c ---- */
/* The group-policy list was just stored as Functions. */
void emsguard_reg_policy_list_stored(struct reg_parser *rp);
/* Holds the local list (|list|, commas) read at |lineno| until the file ends. */
void emsguard_reg_hold_local_list(struct reg_parser *rp, unsigned long lineno,
    const char *list);
/*
 * A deletion ([-KEY] of |path| or an ancestor, or "Functions"=-) of the
 * group-policy list (|local| 0) or the local one (|local| 1).
 */
void emsguard_reg_suite_list_deleted(struct reg_parser *rp, int local);
/*
 * The end of a file: Schannel's precedence between the two lists (the
 * group-policy list wins when present).  0 with an error raised when the
 * local list applies and is unusable.
 */
int emsguard_reg_settle_suite_lists(struct reg_parser *rp);

/* ---- reg_values.c ---- */
/* A "Name"=data or @=data line; 0 with an error raised. */
int emsguard_reg_parse_value_line(struct reg_parser *rp, unsigned long lineno,
    const char *line);

#endif /* EMSGUARD_REG_PARSER_H */
