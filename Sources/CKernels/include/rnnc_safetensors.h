/*
 * rnnc_safetensors.h - header-only reader for safetensors weight files.
 *
 * Every library rnnc generates includes this file, so it depends on nothing but
 * the C standard library and every function is `static inline`.
 *
 * File layout:
 *   8 bytes   little-endian u64 N, the length of the header
 *   N bytes   UTF-8 JSON object: tensor name -> {"dtype": "F32", "shape": [...],
 *             "data_offsets": [begin, end]}, plus an optional "__metadata__"
 *             object whose values are strings
 *   rest      the data section; data_offsets are relative to its first byte
 *
 * The reader validates everything before it trusts anything: it must fail with
 * a readable one-line message, never crash or read out of bounds, on any input,
 * because weight files come from outside (other tools, truncated downloads).
 *
 * Host requirement: little-endian. Tensor bytes are used in place as floats,
 * which is only right when the host byte order matches the file's. Big-endian
 * hosts are refused at compile time where the compiler reports its byte order,
 * and at run time by rnnc_st_open / rnnc_st_parse everywhere else.
 */
#ifndef RNNC_SAFETENSORS_H
#define RNNC_SAFETENSORS_H

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && \
    defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(__BYTE_ORDER__ != __ORDER_BIG_ENDIAN__,
               "rnnc_safetensors.h reads little-endian float data in place; big-endian hosts are not supported");
#endif

#define RNNC_ST_MAX_RANK 8
/* The same cap as the reference safetensors implementation: a header this big
 * is certainly corrupt, and the cap bounds what a bad length field can make us
 * allocate. */
#define RNNC_ST_MAX_HEADER 100000000u
/* Unknown JSON values are skipped recursively; the limit keeps a hostile
 * header ("[[[[...") from exhausting the stack. */
#define RNNC_ST_MAX_DEPTH 128

typedef struct rnnc_st_tensor {
    char *name;            /* NUL-terminated, owned by the file */
    int rank;              /* 0..8 */
    int64_t shape[8];
    const float *data;     /* points into the file's buffer, 4-byte aligned */
    size_t count;          /* number of floats */
} rnnc_st_tensor;

typedef struct rnnc_st_file {
    /* The tensors' bytes, packed in file order; every tensor starts 4-byte
     * aligned (see rnnc_st__place). `size` is the number of bytes in use. */
    unsigned char *buffer; size_t size;                    /* owned */
    rnnc_st_tensor *tensors; int count;                    /* owned, in header order */
    char **meta_keys; char **meta_values; int meta_count;  /* owned, from __metadata__ */
} rnnc_st_file;

#if defined(__GNUC__) || defined(__clang__)
#define RNNC_ST__PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define RNNC_ST__PRINTF(fmt, args)
#endif

/* ------------------------------------------------------------------------ */
/* Messages                                                                  */
/* ------------------------------------------------------------------------ */

/* A bounded, always NUL-terminated string builder; output past the end is
 * silently dropped so callers never have to check for truncation. */
typedef struct rnnc_st__msg {
    char *buf;
    size_t cap;
    size_t len;
} rnnc_st__msg;

static inline void rnnc_st__vput(rnnc_st__msg *m, const char *fmt, va_list ap) RNNC_ST__PRINTF(2, 0);
static inline void rnnc_st__vput(rnnc_st__msg *m, const char *fmt, va_list ap)
{
    if (m->cap == 0 || m->len + 1 >= m->cap) return;
    int n = vsnprintf(m->buf + m->len, m->cap - m->len, fmt, ap);
    if (n < 0) { m->buf[m->len] = '\0'; return; }
    size_t room = m->cap - m->len - 1;
    m->len += (size_t)n < room ? (size_t)n : room;
}

static inline void rnnc_st__put(rnnc_st__msg *m, const char *fmt, ...) RNNC_ST__PRINTF(2, 3);
static inline void rnnc_st__put(rnnc_st__msg *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rnnc_st__vput(m, fmt, ap);
    va_end(ap);
}

/* Copies untrusted text (a tensor name, a dtype, a path) into `out` for use in
 * a message: control bytes become \xNN so the message stays on one line, and
 * long text is cut with "..." (at a UTF-8 character boundary). */
static inline void rnnc_st__show(char *out, size_t outlen, const char *s, size_t n)
{
    size_t o = 0, i = 0;
    if (outlen < 8) { if (outlen) out[0] = '\0'; return; }
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t need = (c < 0x20 || c == 0x7f) ? 4 : 1;
        if (o + need + 4 > outlen) break;  /* keep room for "..." and NUL */
        if (need == 4) {
            static const char hex[] = "0123456789abcdef";
            out[o++] = '\\'; out[o++] = 'x';
            out[o++] = hex[c >> 4]; out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    if (i < n) {
        /* Do not leave half a multi-byte character before the ellipsis. */
        while (o > 0 && ((unsigned char)out[o - 1] & 0xC0) == 0x80) o--;
        if (o > 0 && (unsigned char)out[o - 1] >= 0xC0) o--;
        out[o++] = '.'; out[o++] = '.'; out[o++] = '.';
    }
    out[o] = '\0';
}

/* Writes "LABEL: [tensor 'NAME': ]MESSAGE" into err and returns -1, so error
 * sites can `return rnnc_st__vfail(...)`. */
static inline int rnnc_st__vfail(char *err, size_t errlen, const char *label,
                                 const char *tensor, size_t tensor_len,
                                 const char *fmt, va_list ap) RNNC_ST__PRINTF(6, 0);
static inline int rnnc_st__vfail(char *err, size_t errlen, const char *label,
                                 const char *tensor, size_t tensor_len,
                                 const char *fmt, va_list ap)
{
    if (err == NULL || errlen == 0) return -1;
    rnnc_st__msg m = { err, errlen, 0 };
    char shown[320];
    err[0] = '\0';
    if (label == NULL) label = "<memory>";
    rnnc_st__show(shown, sizeof shown, label, strlen(label));
    rnnc_st__put(&m, "%s: ", shown);
    if (tensor != NULL) {
        rnnc_st__show(shown, 136, tensor, tensor_len);
        rnnc_st__put(&m, "tensor '%s': ", shown);
    }
    rnnc_st__vput(&m, fmt, ap);
    return -1;
}

static inline int rnnc_st__fail(char *err, size_t errlen, const char *label,
                                const char *fmt, ...) RNNC_ST__PRINTF(4, 5);
static inline int rnnc_st__fail(char *err, size_t errlen, const char *label,
                                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rnnc_st__vfail(err, errlen, label, NULL, 0, fmt, ap);
    va_end(ap);
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Public helpers                                                            */
/* ------------------------------------------------------------------------ */

/* Formats "[2, 3, 4]" into buf; used by generated code for shape-mismatch messages. */
static inline void rnnc_st_format_shape(const int64_t *shape, int rank, char *buf, size_t buflen)
{
    if (buf == NULL || buflen == 0) return;
    rnnc_st__msg m = { buf, buflen, 0 };
    buf[0] = '\0';
    if (shape == NULL || rank < 0) rank = 0;
    rnnc_st__put(&m, "[");
    for (int k = 0; k < rank; k++)
        rnnc_st__put(&m, k ? ", %" PRId64 : "%" PRId64, shape[k]);
    rnnc_st__put(&m, "]");
}

/* Frees everything the file owns and leaves it empty; safe to call twice and
 * on a file whose open failed. */
static inline void rnnc_st_close(rnnc_st_file *f)
{
    if (f == NULL) return;
    for (int i = 0; i < f->count; i++) free(f->tensors[i].name);
    for (int i = 0; i < f->meta_count; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->tensors);
    free(f->meta_keys);
    free(f->meta_values);
    free(f->buffer);
    memset(f, 0, sizeof *f);
}

static inline const rnnc_st_tensor *rnnc_st_find(const rnnc_st_file *f, const char *name)
{
    if (f == NULL || name == NULL) return NULL;
    for (int i = 0; i < f->count; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

static inline const char *rnnc_st_meta(const rnnc_st_file *f, const char *key)
{
    if (f == NULL || key == NULL) return NULL;
    for (int i = 0; i < f->meta_count; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* JSON header parser                                                        */
/* ------------------------------------------------------------------------ */

/* A tensor's byte range in the data section, remembered until the data is
 * placed (the public struct only keeps the resulting pointer). */
typedef struct rnnc_st__range {
    uint64_t begin, end;
    int index;  /* into rnnc_st_file.tensors */
} rnnc_st__range;

typedef struct rnnc_st__parser {
    const unsigned char *json;  /* the header bytes, not NUL-terminated */
    size_t len;
    size_t pos;
    uint64_t data_size;         /* bytes in the data section */
    const char *label;
    char *err;
    size_t errlen;
    rnnc_st_file *f;
    rnnc_st__range *ranges;     /* parallel to f->tensors */
    int tensor_cap;
    int meta_cap;
    int seen_metadata;
} rnnc_st__parser;

static inline int rnnc_st__perr(rnnc_st__parser *p, const char *tensor, size_t tensor_len,
                                const char *fmt, ...) RNNC_ST__PRINTF(4, 5);
static inline int rnnc_st__perr(rnnc_st__parser *p, const char *tensor, size_t tensor_len,
                                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rnnc_st__vfail(p->err, p->errlen, p->label, tensor, tensor_len, fmt, ap);
    va_end(ap);
    return -1;
}

/* A JSON syntax error at byte `at` of the header, naming what was found there. */
static inline int rnnc_st__syntax_at(rnnc_st__parser *p, size_t at, const char *expected)
{
    char found[32];
    if (at >= p->len) {
        snprintf(found, sizeof found, "the end of the header");
    } else {
        unsigned char c = p->json[at];
        if (c >= 0x20 && c < 0x7f) snprintf(found, sizeof found, "'%c'", (char)c);
        else snprintf(found, sizeof found, "byte 0x%02x", (unsigned)c);
    }
    return rnnc_st__perr(p, NULL, 0, "header JSON syntax error at byte %zu of %zu: %s (found %s)",
                         at, p->len, expected, found);
}

static inline int rnnc_st__syntax(rnnc_st__parser *p, const char *expected)
{
    return rnnc_st__syntax_at(p, p->pos, expected);
}

static inline int rnnc_st__oom(rnnc_st__parser *p)
{
    return rnnc_st__perr(p, NULL, 0, "out of memory while reading the header");
}

static inline void rnnc_st__ws(rnnc_st__parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->json[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

/* The byte at the cursor, or 0 at the end (0 is never valid JSON there). */
static inline unsigned char rnnc_st__peek(const rnnc_st__parser *p)
{
    return p->pos < p->len ? p->json[p->pos] : 0;
}

static inline int rnnc_st__eat(rnnc_st__parser *p, unsigned char c)
{
    if (rnnc_st__peek(p) != c) return 0;
    p->pos++;
    return 1;
}

static inline int rnnc_st__is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static inline int rnnc_st__equals(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* What kind of JSON value starts with c, for "X is a string, expected ..." messages. */
static inline const char *rnnc_st__kind(unsigned char c)
{
    switch (c) {
    case '{': return "an object";
    case '[': return "an array";
    case '"': return "a string";
    case 't': case 'f': return "a boolean";
    case 'n': return "null";
    default: return (c == '-' || rnnc_st__is_digit(c)) ? "a number" : "not a JSON value";
    }
}

/* Length of the valid UTF-8 sequence at s (at most avail bytes), 0 if invalid.
 * Rejects overlong forms, surrogates and code points past U+10FFFF, as the
 * JSON spec's "UTF-8 text" requires. */
static inline size_t rnnc_st__utf8_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t n;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c == 0xE0) { n = 3; lo = 0xA0; }
    else if (c == 0xED) { n = 3; hi = 0x9F; }
    else if (c >= 0xE1 && c <= 0xEF) n = 3;
    else if (c == 0xF0) { n = 4; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) n = 4;
    else if (c == 0xF4) { n = 4; hi = 0x8F; }
    else return 0;
    if (n > avail || s[1] < lo || s[1] > hi) return 0;
    for (size_t k = 2; k < n; k++)
        if (s[k] < 0x80 || s[k] > 0xBF) return 0;
    return n;
}

/* Four hex digits at s as a number, or -1. */
static inline long rnnc_st__hex4(const unsigned char *s)
{
    long v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned char c = s[k];
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Parses the JSON string at the cursor (which is on the opening quote),
 * decoding escapes. With out != NULL the decoded bytes are returned in a new
 * NUL-terminated allocation (they may contain NULs from \u0000, hence
 * *outlen); with out == NULL the string is only validated and skipped. */
static inline int rnnc_st__string(rnnc_st__parser *p, char **out, size_t *outlen)
{
    const unsigned char *s = p->json;
    size_t open = p->pos, close = open + 1, i = open + 1, n = 0;
    unsigned char *dst = NULL;

    /* Find the closing quote first: decoding never lengthens a string, so
     * one allocation of the raw length is enough. A backslash always
     * escapes the next byte, so `\"` is skipped. */
    for (;; close++) {
        if (close >= p->len) return rnnc_st__syntax_at(p, open, "unterminated string");
        if (s[close] == '"') break;
        if (s[close] == '\\') close++;
    }
    if (out != NULL) {
        dst = (unsigned char *)malloc(close - i + 1);
        if (dst == NULL) return rnnc_st__oom(p);
    }
    while (i < close) {
        unsigned char c = s[i];
        if (c == '\\') {
            /* The quote scan guarantees s[i + 1] exists and precedes `close`. */
            unsigned char e = s[i + 1], single = 0;
            switch (e) {
            case '"': case '\\': case '/': single = e; break;
            case 'b': single = '\b'; break;
            case 'f': single = '\f'; break;
            case 'n': single = '\n'; break;
            case 'r': single = '\r'; break;
            case 't': single = '\t'; break;
            case 'u': break;
            default:
                free(dst);
                return rnnc_st__syntax_at(p, i, "invalid escape in string (JSON allows \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
            }
            if (e != 'u') {
                if (dst) dst[n] = single;
                n++;
                i += 2;
                continue;
            }
            long cp = i + 6 <= close ? rnnc_st__hex4(s + i + 2) : -1;
            if (cp < 0) { free(dst); return rnnc_st__syntax_at(p, i, "\\u must be followed by four hex digits"); }
            size_t used = 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                /* A high surrogate must pair with a following \uDC00-\uDFFF. */
                long low = (i + 12 <= close && s[i + 6] == '\\' && s[i + 7] == 'u') ? rnnc_st__hex4(s + i + 8) : -1;
                if (low < 0xDC00 || low > 0xDFFF) {
                    free(dst);
                    return rnnc_st__syntax_at(p, i, "unpaired UTF-16 surrogate in \\u escape");
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                used = 12;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                free(dst);
                return rnnc_st__syntax_at(p, i, "unpaired UTF-16 surrogate in \\u escape");
            }
            /* Encode as UTF-8; `used` (6 or 12) bytes always exceed the 1-4 written. */
            unsigned char u[4];
            size_t un;
            if (cp < 0x80) { u[0] = (unsigned char)cp; un = 1; }
            else if (cp < 0x800) {
                u[0] = (unsigned char)(0xC0 | (cp >> 6));
                u[1] = (unsigned char)(0x80 | (cp & 0x3F)); un = 2;
            } else if (cp < 0x10000) {
                u[0] = (unsigned char)(0xE0 | (cp >> 12));
                u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                u[2] = (unsigned char)(0x80 | (cp & 0x3F)); un = 3;
            } else {
                u[0] = (unsigned char)(0xF0 | (cp >> 18));
                u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
                u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                u[3] = (unsigned char)(0x80 | (cp & 0x3F)); un = 4;
            }
            if (dst) memcpy(dst + n, u, un);
            n += un;
            i += used;
        } else if (c < 0x20) {
            free(dst);
            return rnnc_st__syntax_at(p, i, "control character in string (it must be escaped)");
        } else if (c < 0x80) {
            if (dst) dst[n] = c;
            n++;
            i++;
        } else {
            size_t k = rnnc_st__utf8_len(s + i, close - i);
            if (k == 0) { free(dst); return rnnc_st__syntax_at(p, i, "invalid UTF-8 in string"); }
            if (dst) memcpy(dst + n, s + i, k);
            n += k;
            i += k;
        }
    }
    p->pos = close + 1;
    if (out != NULL) {
        dst[n] = '\0';
        *out = (char *)dst;
        if (outlen) *outlen = n;
    }
    return 0;
}

enum {
    RNNC_ST__NUM_INT,       /* a non-negative integer that fits in uint64 */
    RNNC_ST__NUM_NEGATIVE,
    RNNC_ST__NUM_FRACTION,  /* has a fraction or exponent ("2.0", "1e3") */
    RNNC_ST__NUM_HUGE       /* an integer past UINT64_MAX */
};

/* Parses the JSON number at the cursor, following the JSON grammar exactly
 * (so "01", "1." and "+1" are syntax errors). *kind says whether it is usable
 * as a size; *value is set for RNNC_ST__NUM_INT. */
static inline int rnnc_st__number(rnnc_st__parser *p, uint64_t *value, int *kind)
{
    const unsigned char *s = p->json;
    size_t i = p->pos;
    int negative = 0, fraction = 0, huge = 0;
    uint64_t v = 0;

    if (i < p->len && s[i] == '-') { negative = 1; i++; }
    if (i >= p->len || !rnnc_st__is_digit(s[i])) return rnnc_st__syntax_at(p, i, "expected a digit");
    if (s[i] == '0') {
        i++;
    } else {
        for (; i < p->len && rnnc_st__is_digit(s[i]); i++) {
            uint64_t d = (uint64_t)(s[i] - '0');
            if (v > (UINT64_MAX - d) / 10) huge = 1;
            else v = v * 10 + d;
        }
    }
    if (i < p->len && s[i] == '.') {
        i++;
        if (i >= p->len || !rnnc_st__is_digit(s[i])) return rnnc_st__syntax_at(p, i, "expected a digit after '.'");
        while (i < p->len && rnnc_st__is_digit(s[i])) i++;
        fraction = 1;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= p->len || !rnnc_st__is_digit(s[i])) return rnnc_st__syntax_at(p, i, "expected a digit in the exponent");
        while (i < p->len && rnnc_st__is_digit(s[i])) i++;
        fraction = 1;
    }
    p->pos = i;
    *value = v;
    if (fraction) *kind = RNNC_ST__NUM_FRACTION;
    else if (negative && (v != 0 || huge)) *kind = RNNC_ST__NUM_NEGATIVE;  /* "-0" is 0 */
    else if (huge) *kind = RNNC_ST__NUM_HUGE;
    else *kind = RNNC_ST__NUM_INT;
    return 0;
}

static inline int rnnc_st__literal(rnnc_st__parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->json + p->pos, word, n) != 0)
        return rnnc_st__syntax(p, "expected a JSON value");
    p->pos += n;
    return 0;
}

/* Validates and skips any JSON value (fields rnnc does not use). */
static inline int rnnc_st__skip_value(rnnc_st__parser *p, int depth)
{
    uint64_t ignored;
    int kind;
    if (depth > RNNC_ST_MAX_DEPTH) return rnnc_st__syntax(p, "values nested more than 128 levels deep");
    rnnc_st__ws(p);
    unsigned char c = rnnc_st__peek(p);
    if (c == '{' || c == '[') {
        unsigned char close = c == '{' ? '}' : ']';
        p->pos++;
        rnnc_st__ws(p);
        if (rnnc_st__eat(p, close)) return 0;
        for (;;) {
            if (c == '{') {
                rnnc_st__ws(p);
                if (rnnc_st__peek(p) != '"') return rnnc_st__syntax(p, "expected a string key");
                if (rnnc_st__string(p, NULL, NULL)) return -1;
                rnnc_st__ws(p);
                if (!rnnc_st__eat(p, ':')) return rnnc_st__syntax(p, "expected ':' after an object key");
            }
            if (rnnc_st__skip_value(p, depth + 1)) return -1;
            rnnc_st__ws(p);
            if (rnnc_st__eat(p, ',')) continue;
            if (rnnc_st__eat(p, close)) return 0;
            return rnnc_st__syntax(p, c == '{' ? "expected ',' or '}' after an object member"
                                              : "expected ',' or ']' after an array element");
        }
    }
    switch (c) {
    case '"': return rnnc_st__string(p, NULL, NULL);
    case 't': return rnnc_st__literal(p, "true");
    case 'f': return rnnc_st__literal(p, "false");
    case 'n': return rnnc_st__literal(p, "null");
    default:
        if (c == '-' || rnnc_st__is_digit(c)) return rnnc_st__number(p, &ignored, &kind);
        return rnnc_st__syntax(p, "expected a JSON value");
    }
}

/* For a value of the wrong JSON type: checks that it is at least well-formed
 * (a syntax error is the more useful message) and returns its kind, or NULL
 * after reporting the syntax error. */
static inline const char *rnnc_st__wrong_type(rnnc_st__parser *p, int depth)
{
    const char *kind = rnnc_st__kind(rnnc_st__peek(p));
    return rnnc_st__skip_value(p, depth) ? NULL : kind;
}

/* Parses an array of non-negative integers ("shape" or "data_offsets") into
 * vals[0..max); *count gets the number of elements, which may exceed max
 * (the caller reports that). Values above `limit` are rejected. */
static inline int rnnc_st__uint_array(rnnc_st__parser *p, const char *tname, size_t tlen,
                                      const char *field, const char *noun, uint64_t limit,
                                      uint64_t *vals, size_t max, size_t *count)
{
    size_t n = 0;
    if (rnnc_st__peek(p) != '[') {
        const char *kind = rnnc_st__wrong_type(p, 3);
        if (kind == NULL) return -1;
        return rnnc_st__perr(p, tname, tlen, "%s is %s, expected an array of non-negative integers", field, kind);
    }
    p->pos++;
    rnnc_st__ws(p);
    if (!rnnc_st__eat(p, ']')) {
        for (;;) {
            rnnc_st__ws(p);
            unsigned char c = rnnc_st__peek(p);
            if (c != '-' && !rnnc_st__is_digit(c)) {
                const char *kind = rnnc_st__wrong_type(p, 4);
                if (kind == NULL) return -1;
                return rnnc_st__perr(p, tname, tlen, "%s[%zu] is %s, expected a non-negative integer", field, n, kind);
            }
            size_t start = p->pos;
            uint64_t v;
            int kind;
            if (rnnc_st__number(p, &v, &kind)) return -1;
            if (kind != RNNC_ST__NUM_INT || v > limit) {
                char text[48];
                rnnc_st__show(text, sizeof text, (const char *)p->json + start, p->pos - start);
                const char *why = kind == RNNC_ST__NUM_NEGATIVE ? "negative"
                                : kind == RNNC_ST__NUM_FRACTION ? "not an integer" : "too large";
                return rnnc_st__perr(p, tname, tlen, "%s[%zu] is %s, which is %s; %s must be non-negative integers",
                                     field, n, text, why, noun);
            }
            if (n < max) vals[n] = v;
            n++;
            rnnc_st__ws(p);
            if (rnnc_st__eat(p, ',')) continue;
            if (rnnc_st__eat(p, ']')) break;
            return rnnc_st__syntax(p, "expected ',' or ']' after an array element");
        }
    }
    *count = n;
    return 0;
}

/* Every dtype the safetensors format defines, so that a real but unsupported
 * one gets a "convert it" message rather than "unknown". */
static inline int rnnc_st__known_dtype(const char *s, size_t n)
{
    static const char *const known[] = {
        "BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64",
        "I64", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64",
    };
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
        if (rnnc_st__equals(s, n, known[k])) return 1;
    return 0;
}

static inline int rnnc_st__push_tensor(rnnc_st__parser *p, char *name, size_t rank,
                                       const uint64_t *dims, uint64_t elems,
                                       uint64_t begin, uint64_t end)
{
    rnnc_st_file *f = p->f;
    if (f->count == p->tensor_cap) {
        if (p->tensor_cap > INT_MAX / 2) return rnnc_st__perr(p, NULL, 0, "too many tensors");
        int cap = p->tensor_cap ? p->tensor_cap * 2 : 16;
        rnnc_st_tensor *t = (rnnc_st_tensor *)realloc(f->tensors, (size_t)cap * sizeof *t);
        if (t == NULL) return rnnc_st__oom(p);
        f->tensors = t;
        rnnc_st__range *r = (rnnc_st__range *)realloc(p->ranges, (size_t)cap * sizeof *r);
        if (r == NULL) return rnnc_st__oom(p);
        p->ranges = r;
        p->tensor_cap = cap;
    }
    rnnc_st_tensor *t = &f->tensors[f->count];
    memset(t, 0, sizeof *t);
    t->name = name;
    t->rank = (int)rank;
    for (size_t k = 0; k < rank; k++) t->shape[k] = (int64_t)dims[k];
    t->count = (size_t)elems;
    p->ranges[f->count].begin = begin;
    p->ranges[f->count].end = end;
    p->ranges[f->count].index = f->count;
    f->count++;
    return 0;
}

/* Checks a parsed tensor entry: required fields, dtype, rank, and that its
 * byte range lies in the data section and matches its shape. Sets *elems_out
 * to the element count. */
static inline int rnnc_st__check_tensor(rnnc_st__parser *p, const char *name, size_t name_len,
                                        const char *dtype, size_t dtype_len, int have_shape, int have_offsets,
                                        const uint64_t *dims, size_t rank, const uint64_t *offsets, size_t noffsets,
                                        uint64_t *elems_out)
{
    uint64_t elems = 1, begin = offsets[0], end = offsets[1];
    int overflow = 0;
    int64_t sdims[RNNC_ST_MAX_RANK];
    char text[200];

    if (dtype == NULL || !have_shape || !have_offsets)
        return rnnc_st__perr(p, name, name_len,
                             "entry is missing \"%s\" (each tensor needs dtype, shape and data_offsets)",
                             dtype == NULL ? "dtype" : !have_shape ? "shape" : "data_offsets");
    if (!rnnc_st__equals(dtype, dtype_len, "F32")) {
        rnnc_st__show(text, 48, dtype, dtype_len);
        if (rnnc_st__known_dtype(dtype, dtype_len))
            return rnnc_st__perr(p, name, name_len,
                                 "unsupported dtype '%s'; rnnc reads F32 tensors only (save the weights as float32)", text);
        return rnnc_st__perr(p, name, name_len, "unknown dtype '%s'; rnnc reads F32 tensors", text);
    }
    if (rank > RNNC_ST_MAX_RANK)
        return rnnc_st__perr(p, name, name_len, "shape has rank %zu; rnnc supports at most %d dimensions",
                             rank, RNNC_ST_MAX_RANK);
    if (noffsets != 2)
        return rnnc_st__perr(p, name, name_len, "data_offsets has %zu entries, expected 2 ([begin, end])", noffsets);

    /* Element count with overflow checks: a zero dimension makes the product
     * 0 however large the others are; otherwise stop at the first overflow. */
    for (size_t k = 0; k < rank; k++)
        if (dims[k] == 0) elems = 0;
    for (size_t k = 0; k < rank && elems != 0; k++) {
        if (elems > UINT64_MAX / dims[k]) { overflow = 1; break; }
        elems *= dims[k];
    }
    for (size_t k = 0; k < rank; k++) sdims[k] = (int64_t)dims[k];  /* each <= INT64_MAX, checked when parsed */
    rnnc_st_format_shape(sdims, (int)rank, text, sizeof text);
    if (overflow || elems > (uint64_t)(SIZE_MAX / 4))
        return rnnc_st__perr(p, name, name_len, "shape %s has too many elements (its byte size overflows)", text);
    if (begin > end)
        return rnnc_st__perr(p, name, name_len,
                             "data_offsets [%" PRIu64 ", %" PRIu64 "): begin is greater than end", begin, end);
    if (end > p->data_size)
        return rnnc_st__perr(p, name, name_len,
                             "data_offsets [%" PRIu64 ", %" PRIu64 ") exceed the data section (%" PRIu64
                             " bytes); the file is truncated or corrupt", begin, end, p->data_size);
    if (end - begin != elems * 4)
        return rnnc_st__perr(p, name, name_len,
                             "data_offsets [%" PRIu64 ", %" PRIu64 ") hold %" PRIu64 " bytes but shape %s of F32 needs %"
                             PRIu64 " bytes (size mismatch)", begin, end, end - begin, text, elems * 4);
    *elems_out = elems;
    return 0;
}

/* Parses one tensor entry (cursor on its value) and validates it against the
 * data section. Takes ownership of `name`. */
static inline int rnnc_st__tensor(rnnc_st__parser *p, char *name, size_t name_len)
{
    char *key = NULL, *dtype = NULL;
    size_t key_len = 0, dtype_len = 0, rank = 0, noffsets = 0;
    int have_shape = 0, have_offsets = 0, rc = -1;
    uint64_t dims[RNNC_ST_MAX_RANK], offsets[2] = { 0, 0 }, elems = 0;

    if (rnnc_st__peek(p) != '{') {
        const char *kind = rnnc_st__wrong_type(p, 2);
        if (kind != NULL)
            rnnc_st__perr(p, name, name_len, "entry is %s, expected an object with dtype, shape and data_offsets", kind);
        goto out;
    }
    p->pos++;
    rnnc_st__ws(p);
    if (!rnnc_st__eat(p, '}')) {
        for (;;) {
            rnnc_st__ws(p);
            if (rnnc_st__peek(p) != '"') { rnnc_st__syntax(p, "expected a string key"); goto out; }
            if (rnnc_st__string(p, &key, &key_len)) goto out;
            rnnc_st__ws(p);
            if (!rnnc_st__eat(p, ':')) { rnnc_st__syntax(p, "expected ':' after an object key"); goto out; }
            rnnc_st__ws(p);
            if (rnnc_st__equals(key, key_len, "dtype")) {
                if (dtype != NULL) { rnnc_st__perr(p, name, name_len, "duplicate key 'dtype' in the entry"); goto out; }
                if (rnnc_st__peek(p) != '"') {
                    const char *kind = rnnc_st__wrong_type(p, 3);
                    if (kind != NULL) rnnc_st__perr(p, name, name_len, "dtype is %s, expected a string such as \"F32\"", kind);
                    goto out;
                }
                if (rnnc_st__string(p, &dtype, &dtype_len)) goto out;
            } else if (rnnc_st__equals(key, key_len, "shape")) {
                if (have_shape) { rnnc_st__perr(p, name, name_len, "duplicate key 'shape' in the entry"); goto out; }
                if (rnnc_st__uint_array(p, name, name_len, "shape", "dimensions", (uint64_t)INT64_MAX,
                                        dims, RNNC_ST_MAX_RANK, &rank)) goto out;
                have_shape = 1;
            } else if (rnnc_st__equals(key, key_len, "data_offsets")) {
                if (have_offsets) { rnnc_st__perr(p, name, name_len, "duplicate key 'data_offsets' in the entry"); goto out; }
                if (rnnc_st__uint_array(p, name, name_len, "data_offsets", "offsets", UINT64_MAX,
                                        offsets, 2, &noffsets)) goto out;
                have_offsets = 1;
            } else if (rnnc_st__skip_value(p, 3)) {
                goto out;  /* other fields are not part of the format; ignore them like the reference reader */
            }
            free(key);
            key = NULL;
            rnnc_st__ws(p);
            if (rnnc_st__eat(p, ',')) continue;
            if (rnnc_st__eat(p, '}')) break;
            rnnc_st__syntax(p, "expected ',' or '}' after an object member");
            goto out;
        }
    }

    if (rnnc_st__check_tensor(p, name, name_len, dtype, dtype_len, have_shape, have_offsets,
                              dims, rank, offsets, noffsets, &elems)) goto out;
    if (rnnc_st__push_tensor(p, name, rank, dims, elems, offsets[0], offsets[1])) goto out;
    name = NULL;  /* now owned by the file */
    rc = 0;
out:
    free(key);
    free(dtype);
    free(name);
    return rc;
}

static inline int rnnc_st__push_meta(rnnc_st__parser *p, char *key, char *value)
{
    rnnc_st_file *f = p->f;
    if (f->meta_count == p->meta_cap) {
        if (p->meta_cap > INT_MAX / 2) return rnnc_st__perr(p, NULL, 0, "too many __metadata__ entries");
        int cap = p->meta_cap ? p->meta_cap * 2 : 8;
        char **k = (char **)realloc(f->meta_keys, (size_t)cap * sizeof *k);
        if (k == NULL) return rnnc_st__oom(p);
        f->meta_keys = k;
        char **v = (char **)realloc(f->meta_values, (size_t)cap * sizeof *v);
        if (v == NULL) return rnnc_st__oom(p);
        f->meta_values = v;
        p->meta_cap = cap;
    }
    f->meta_keys[f->meta_count] = key;
    f->meta_values[f->meta_count] = value;
    f->meta_count++;
    return 0;
}

/* Parses the "__metadata__" object (cursor on its value). */
static inline int rnnc_st__metadata(rnnc_st__parser *p)
{
    char *key = NULL, *value = NULL;
    size_t key_len = 0, value_len = 0;
    int rc = -1;

    if (p->seen_metadata) return rnnc_st__perr(p, NULL, 0, "duplicate \"__metadata__\" entry in the header");
    p->seen_metadata = 1;
    if (rnnc_st__peek(p) != '{') {
        const char *kind = rnnc_st__wrong_type(p, 2);
        if (kind == NULL) return -1;
        return rnnc_st__perr(p, NULL, 0, "__metadata__ is %s, expected an object of string values", kind);
    }
    p->pos++;
    rnnc_st__ws(p);
    if (rnnc_st__eat(p, '}')) return 0;
    for (;;) {
        rnnc_st__ws(p);
        if (rnnc_st__peek(p) != '"') { rnnc_st__syntax(p, "expected a string key"); goto out; }
        if (rnnc_st__string(p, &key, &key_len)) goto out;
        char shown[136];
        rnnc_st__show(shown, sizeof shown, key, key_len);
        if (memchr(key, '\0', key_len) != NULL) {
            rnnc_st__perr(p, NULL, 0, "__metadata__ key '%s' contains a NUL character (\\u0000)", shown);
            goto out;
        }
        rnnc_st__ws(p);
        if (!rnnc_st__eat(p, ':')) { rnnc_st__syntax(p, "expected ':' after an object key"); goto out; }
        rnnc_st__ws(p);
        if (rnnc_st__peek(p) != '"') {
            const char *kind = rnnc_st__wrong_type(p, 3);
            if (kind != NULL)
                rnnc_st__perr(p, NULL, 0, "__metadata__ value for '%s' is %s; metadata values must be strings", shown, kind);
            goto out;
        }
        if (rnnc_st__string(p, &value, &value_len)) goto out;
        if (memchr(value, '\0', value_len) != NULL) {
            rnnc_st__perr(p, NULL, 0, "__metadata__ value for '%s' contains a NUL character (\\u0000)", shown);
            goto out;
        }
        if (rnnc_st__push_meta(p, key, value)) goto out;
        key = value = NULL;  /* now owned by the file */
        rnnc_st__ws(p);
        if (rnnc_st__eat(p, ',')) continue;
        if (rnnc_st__eat(p, '}')) break;
        rnnc_st__syntax(p, "expected ',' or '}' after an object member");
        goto out;
    }
    rc = 0;
out:
    free(key);
    free(value);
    return rc;
}

static inline int rnnc_st__cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static inline int rnnc_st__cmp_range(const void *a, const void *b)
{
    const rnnc_st__range *x = (const rnnc_st__range *)a, *y = (const rnnc_st__range *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Finds a name that occurs twice among n strings, or NULL. Sorting keeps this
 * O(n log n) even for a header with millions of entries. */
static inline int rnnc_st__find_duplicate(rnnc_st__parser *p, char *const *names, int n, const char **dup)
{
    *dup = NULL;
    if (n < 2) return 0;
    char **sorted = (char **)malloc((size_t)n * sizeof *sorted);
    if (sorted == NULL) return rnnc_st__oom(p);
    memcpy(sorted, names, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, rnnc_st__cmp_str);
    for (int i = 1; i < n && *dup == NULL; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) *dup = sorted[i];
    free(sorted);
    return 0;
}

/* Parses and validates the whole header. On success f holds the tensors
 * (data pointers not yet set) and metadata, and *ranges_out the tensors'
 * byte ranges sorted by position, for rnnc_st__place. On failure f is left
 * partly filled; the caller closes it. */
static inline int rnnc_st__header(rnnc_st_file *f, const unsigned char *json, size_t len,
                                  uint64_t data_size, const char *label, char *err, size_t errlen,
                                  rnnc_st__range **ranges_out)
{
    rnnc_st__parser parser;
    rnnc_st__parser *p = &parser;
    char *key = NULL;
    const char *dup = NULL;
    size_t key_len = 0;
    int rc = -1;

    memset(p, 0, sizeof *p);
    p->json = json;
    p->len = len;
    p->data_size = data_size;
    p->label = label;
    p->err = err;
    p->errlen = errlen;
    p->f = f;
    *ranges_out = NULL;

    /* Check the JSON syntax of the whole header first, so that a damaged or
     * truncated header is reported as such (with the byte offset) rather
     * than as whatever entry happens to be incomplete. Headers are small;
     * the second pass below then only checks meaning. */
    if (rnnc_st__skip_value(p, 1)) goto out;
    rnnc_st__ws(p);
    if (p->pos != p->len) { rnnc_st__syntax(p, "unexpected data after the top-level value"); goto out; }
    p->pos = 0;
    rnnc_st__ws(p);
    if (rnnc_st__peek(p) != '{') {
        rnnc_st__perr(p, NULL, 0, "the header is %s, not a JSON object mapping tensor names to entries",
                      rnnc_st__kind(rnnc_st__peek(p)));
        goto out;
    }
    p->pos++;
    rnnc_st__ws(p);
    if (!rnnc_st__eat(p, '}')) {
        for (;;) {
            rnnc_st__ws(p);
            if (rnnc_st__peek(p) != '"') { rnnc_st__syntax(p, "expected a string key"); goto out; }
            if (rnnc_st__string(p, &key, &key_len)) goto out;
            rnnc_st__ws(p);
            if (!rnnc_st__eat(p, ':')) { rnnc_st__syntax(p, "expected ':' after an object key"); goto out; }
            rnnc_st__ws(p);
            if (rnnc_st__equals(key, key_len, "__metadata__")) {
                if (rnnc_st__metadata(p)) goto out;
                free(key);
            } else {
                if (memchr(key, '\0', key_len) != NULL) {
                    rnnc_st__perr(p, key, key_len, "name contains a NUL character (\\u0000)");
                    goto out;
                }
                char *name = key;
                key = NULL;
                if (rnnc_st__tensor(p, name, key_len)) goto out;
            }
            key = NULL;
            rnnc_st__ws(p);
            if (rnnc_st__eat(p, ',')) continue;
            if (rnnc_st__eat(p, '}')) break;
            rnnc_st__syntax(p, "expected ',' or '}' after an object member");
            goto out;
        }
    }

    /* Whole-file checks, now that every entry is known. */
    if (f->count > 1) {
        char **names = (char **)malloc((size_t)f->count * sizeof *names);
        if (names == NULL) { rnnc_st__oom(p); goto out; }
        for (int i = 0; i < f->count; i++) names[i] = f->tensors[i].name;
        int bad = rnnc_st__find_duplicate(p, names, f->count, &dup);
        if (!bad && dup != NULL)
            rnnc_st__perr(p, dup, strlen(dup), "duplicate tensor name; each name may appear only once");
        free(names);
        if (bad || dup != NULL) goto out;
    }
    if (rnnc_st__find_duplicate(p, f->meta_keys, f->meta_count, &dup)) goto out;
    if (dup != NULL) {
        char shown[136];
        rnnc_st__show(shown, sizeof shown, dup, strlen(dup));
        rnnc_st__perr(p, NULL, 0, "duplicate __metadata__ key '%s'", shown);
        goto out;
    }
    if (f->count > 1) {
        /* Sorted by begin, a non-empty range overlaps an earlier one exactly
         * when it starts before the furthest end seen so far. Empty ranges
         * (tensors with a zero dimension) hold no bytes and overlap nothing. */
        qsort(p->ranges, (size_t)f->count, sizeof *p->ranges, rnnc_st__cmp_range);
        uint64_t reach = 0;
        int reach_at = -1;
        for (int i = 0; i < f->count; i++) {
            const rnnc_st__range *r = &p->ranges[i];
            if (r->begin == r->end) continue;
            if (reach_at >= 0 && r->begin < reach) {
                const rnnc_st__range *q = &p->ranges[reach_at];
                char a[136], b[136];
                const char *na = f->tensors[q->index].name, *nb = f->tensors[r->index].name;
                rnnc_st__show(a, sizeof a, na, strlen(na));
                rnnc_st__show(b, sizeof b, nb, strlen(nb));
                rnnc_st__perr(p, NULL, 0,
                              "tensors '%s' and '%s' overlap: data_offsets [%" PRIu64 ", %" PRIu64 ") and [%"
                              PRIu64 ", %" PRIu64 ") share bytes", a, b, q->begin, q->end, r->begin, r->end);
                goto out;
            }
            if (r->end > reach) { reach = r->end; reach_at = i; }
        }
    }
    *ranges_out = p->ranges;
    p->ranges = NULL;
    rc = 0;
out:
    free(key);
    free(p->ranges);
    return rc;
}

/* Packs the tensors' bytes to the front of f->buffer (which holds the whole
 * data section) in file order, so that each one starts at a multiple of 4.
 * The format does not require aligned offsets, and a misaligned float
 * pointer is undefined behaviour. Moving in place is safe: going through
 * non-overlapping ranges in order, the write position never passes the read
 * position. In files written by the usual tools this moves nothing. */
static inline void rnnc_st__place(rnnc_st_file *f, const rnnc_st__range *sorted)
{
    size_t at = 0;
    for (int i = 0; i < f->count; i++) {
        size_t begin = (size_t)sorted[i].begin, n = (size_t)(sorted[i].end - sorted[i].begin);
        if (n != 0 && at != begin) memmove(f->buffer + at, f->buffer + begin, n);
        f->tensors[sorted[i].index].data = (const float *)(const void *)(f->buffer + at);
        at += n;
    }
    f->size = at;
}

static inline int rnnc_st__host_ok(const char *label, char *err, size_t errlen)
{
    const uint32_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    if (first == 1) return 0;
    return rnnc_st__fail(err, errlen, label, "rnnc reads safetensors only on little-endian hosts");
}

static inline uint64_t rnnc_st__le64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--) v = (v << 8) | b[k];
    return v;
}

/* Checks the header length field against what follows it. */
static inline int rnnc_st__check_header_len(uint64_t n, uint64_t rest, const char *label, char *err, size_t errlen)
{
    if (n == 0)
        return rnnc_st__fail(err, errlen, label, "header length is 0; not a safetensors file");
    if (n > RNNC_ST_MAX_HEADER)
        return rnnc_st__fail(err, errlen, label,
                             "header length %" PRIu64 " is over the 100 MB limit; not a safetensors file or corrupt", n);
    if (n > rest)
        return rnnc_st__fail(err, errlen, label,
                             "header length %" PRIu64 " is larger than the %" PRIu64
                             " bytes after it; the file is truncated or not a safetensors file", n, rest);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Entry points                                                              */
/* ------------------------------------------------------------------------ */

/* Same as rnnc_st_open, from bytes in memory (copied); `label` is used in
 * messages in place of the path. */
static inline int rnnc_st_parse(const unsigned char *bytes, size_t size, const char *label,
                                rnnc_st_file *f, char *err, size_t errlen)
{
    rnnc_st__range *ranges = NULL;
    if (err != NULL && errlen > 0) err[0] = '\0';
    if (f == NULL) return rnnc_st__fail(err, errlen, label, "no file structure given");
    memset(f, 0, sizeof *f);
    if (rnnc_st__host_ok(label, err, errlen)) return -1;
    if (bytes == NULL && size > 0) return rnnc_st__fail(err, errlen, label, "no bytes given");
    if (size < 8)
        return rnnc_st__fail(err, errlen, label,
                             "file is %zu bytes, shorter than 8 bytes (the header length); not a safetensors file", size);
    uint64_t n = rnnc_st__le64(bytes);
    if (rnnc_st__check_header_len(n, (uint64_t)(size - 8), label, err, errlen)) return -1;
    size_t data_size = size - 8 - (size_t)n;
    if (rnnc_st__header(f, bytes + 8, (size_t)n, (uint64_t)data_size, label, err, errlen, &ranges)) {
        rnnc_st_close(f);
        return -1;
    }
    f->buffer = (unsigned char *)malloc(data_size ? data_size : 1);
    if (f->buffer == NULL) {
        free(ranges);
        rnnc_st_close(f);
        return rnnc_st__fail(err, errlen, label, "out of memory (%zu bytes of tensor data)", data_size);
    }
    if (data_size) memcpy(f->buffer, bytes + 8 + n, data_size);
    rnnc_st__place(f, ranges);
    free(ranges);
    return 0;
}

/* Reads and validates the whole file. Returns 0 on success; on failure returns
 * -1, writes a one-line message starting with the path into err (always
 * NUL-terminated, truncated to errlen) and leaves f empty (safe to close). */
static inline int rnnc_st_open(const char *path, rnnc_st_file *f, char *err, size_t errlen)
{
    const char *label = path != NULL ? path : "(no path)";
    unsigned char head[8], *json = NULL;
    rnnc_st__range *ranges = NULL;
    FILE *fp = NULL;
    long end = -1;
    uint64_t rest, n;
    size_t got, data_size;
    int rc = -1, e;

    if (err != NULL && errlen > 0) err[0] = '\0';
    if (f == NULL) return rnnc_st__fail(err, errlen, label, "no file structure given");
    memset(f, 0, sizeof *f);
    if (path == NULL) return rnnc_st__fail(err, errlen, label, "no path given");
    if (rnnc_st__host_ok(label, err, errlen)) return -1;

    errno = 0;
    fp = fopen(path, "rb");
    if (fp == NULL) {
        e = errno;
        return rnnc_st__fail(err, errlen, label, "cannot open: %s", e ? strerror(e) : "unknown error");
    }
    /* Read the length field before asking for the size: reading is what
     * fails, with a useful errno, when the path is a directory. */
    errno = 0;
    got = fread(head, 1, 8, fp);
    if (got < 8) {
        e = errno;
        if (ferror(fp)) rnnc_st__fail(err, errlen, label, "cannot read: %s", e ? strerror(e) : "read error");
        else rnnc_st__fail(err, errlen, label,
                           "file is %zu bytes, shorter than 8 bytes (the header length); not a safetensors file", got);
        goto done;
    }
    /* The size is needed up front to validate the header length before
     * allocating for it. ftell returns a long, which is 64-bit on the LP64
     * hosts rnnc targets. */
    errno = 0;
    if (fseek(fp, 0, SEEK_END) == 0) end = ftell(fp);
    if (end < 8 || fseek(fp, 8, SEEK_SET) != 0) {
        e = errno;
        rnnc_st__fail(err, errlen, label, "cannot determine the file size: %s", e ? strerror(e) : "seek failed");
        goto done;
    }
    rest = (uint64_t)end - 8;
    n = rnnc_st__le64(head);
    if (rnnc_st__check_header_len(n, rest, label, err, errlen)) goto done;
#if SIZE_MAX < UINT64_MAX
    if (rest - n > (uint64_t)SIZE_MAX) {  /* only possible where size_t is narrower than 64 bits */
        rnnc_st__fail(err, errlen, label, "file is too large for this platform's memory");
        goto done;
    }
#endif
    data_size = (size_t)(rest - n);
    json = (unsigned char *)malloc((size_t)n);
    if (json == NULL) {
        rnnc_st__fail(err, errlen, label, "out of memory (%" PRIu64 " bytes of header)", n);
        goto done;
    }
    errno = 0;
    got = fread(json, 1, (size_t)n, fp);
    if (got != (size_t)n) {
        e = errno;
        rnnc_st__fail(err, errlen, label, "cannot read the header: %s",
                      ferror(fp) ? (e ? strerror(e) : "read error") : "the file shrank while being read");
        goto done;
    }
    if (rnnc_st__header(f, json, (size_t)n, (uint64_t)data_size, label, err, errlen, &ranges)) goto done;
    free(json);
    json = NULL;
    f->buffer = (unsigned char *)malloc(data_size ? data_size : 1);
    if (f->buffer == NULL) {
        rnnc_st__fail(err, errlen, label, "out of memory (%zu bytes of tensor data)", data_size);
        goto done;
    }
    errno = 0;
    got = data_size ? fread(f->buffer, 1, data_size, fp) : 0;
    if (got != data_size) {
        e = errno;
        rnnc_st__fail(err, errlen, label, "cannot read the tensor data: %s",
                      ferror(fp) ? (e ? strerror(e) : "read error") : "the file shrank while being read");
        goto done;
    }
    rnnc_st__place(f, ranges);
    rc = 0;
done:
    free(json);
    free(ranges);
    fclose(fp);
    if (rc != 0) rnnc_st_close(f);
    return rc;
}

#endif /* RNNC_SAFETENSORS_H */
