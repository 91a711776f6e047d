/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the .reg parser's UTF-16LE path.  Mutating UTF-16 bytes
 * directly mostly yields odd lengths and stray surrogates, so this target
 * takes text (UTF-8, the corpus is plain .reg text), converts it to UTF-16LE
 * behind a byte-order mark, as regedit writes version 5.00 files, and
 * parses that.
 *
 * Differential check: when the input is valid UTF-8 without NUL, the
 * library must read the UTF-16 file and the same text as UTF-8 identically
 * (both fail, or both succeed with the same policy).  Invalid UTF-8 bytes
 * become U+0080..U+00FF, and encoded surrogates (ED A0..BF xx) become lone
 * UTF-16 surrogates, so the decoder's error paths are reached too.
 */
#include <stdint.h>
#include <string.h>
#include <openssl/err.h>
#include "oracles.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decodes one UTF-8 sequence at |p|; returns its length, 0 if invalid. */
static size_t utf8_char(const uint8_t *p, size_t n, unsigned long *cp, int *surrogate)
{
    size_t len, i;
    unsigned long c;

    *surrogate = 0;
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2, c = p[0] & 0x1f;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        len = 3, c = p[0] & 0x0f;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        len = 4, c = p[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)))
        return 0;
    if (c >= 0xd800 && c <= 0xdfff)
        *surrogate = 1; /* not valid UTF-8, but a useful UTF-16 mutation */
    *cp = c;
    return len;
}

static void put16(uint8_t *out, size_t *o, unsigned long u)
{
    out[(*o)++] = (uint8_t)(u & 0xff);
    out[(*o)++] = (uint8_t)(u >> 8);
}

/*
 * |in| as UTF-16LE with a BOM in |out| (room for 2 + 2 * n bytes); returns
 * the length.  *valid is cleared when |in| is not valid UTF-8.
 */
static size_t to_utf16(const uint8_t *in, size_t n, uint8_t *out, int *valid)
{
    size_t i = 0, o = 0;

    *valid = 1;
    put16(out, &o, 0xfeff);
    while (i < n) {
        unsigned long cp;
        int surrogate;
        size_t len = utf8_char(in + i, n - i, &cp, &surrogate);

        if (len == 0) {
            *valid = 0;
            cp = in[i]; /* read as Latin-1 */
            len = 1;
        }
        if (surrogate)
            *valid = 0;
        if (cp >= 0x10000) {
            put16(out, &o, 0xd800 + ((cp - 0x10000) >> 10));
            put16(out, &o, 0xdc00 + ((cp - 0x10000) & 0x3ff));
        } else {
            put16(out, &o, cp);
        }
        i += len;
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    EMSGUARD_POLICY as_utf16, as_utf8;
    uint8_t *wide;
    size_t wlen;
    int valid, ok16, ok8;

    /* A UTF-8 BOM is read as "no BOM" by the library; keep it out. */
    if (size >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) {
        data += 3;
        size -= 3;
    }
    if ((wide = malloc(2 + 2 * size)) == NULL)
        abort();
    wlen = to_utf16(data, size, wide, &valid);
    ok16 = fuzz_reg_apply_checked(wide, wlen, &as_utf16);
    /* The UTF-8 path would take a second BOM for the first: not comparable. */
    if (valid && memchr(data, '\0', size) == NULL
        && !(size >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)) {
        ok8 = fuzz_reg_apply_checked(data, size, &as_utf8);
        FUZZ_CHECK(ok16 == ok8, "UTF-16LE file %s, the same text as UTF-8 %s",
            ok16 ? "loads" : "fails", ok8 ? "loads" : "fails");
        if (ok16)
            FUZZ_CHECK(emsguard_policy_equal(&as_utf16, &as_utf8)
                    && fuzz_same_values(&as_utf16, &as_utf8),
                "UTF-16LE and UTF-8 encodings of one file give different policies");
    }
    ERR_clear_error();
    free(wide);
    return 0;
}
