/* Growable byte buffers and the escapers that write into them (HTML, JSON). Shared by both
 * daemons; out of memory aborts (cm_alloc.h). */
#ifndef CM_BUF_H
#define CM_BUF_H

#include <stddef.h>

/* Growable byte buffer. Always NUL-terminated after any append; free with cm_buf_free. */
struct cm_buf {
    char *data;
    size_t len;
    size_t cap;
};

void cm_buf_init(struct cm_buf *b);
void cm_buf_reserve(struct cm_buf *b, size_t extra);
void cm_buf_append(struct cm_buf *b, const void *p, size_t n);
void cm_buf_puts(struct cm_buf *b, const char *s);
void cm_buf_printf(struct cm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends text with &, <, >, ", ' replaced by HTML entities (HTML 5 §13.1.2.6 text and
 * quoted attribute values). */
void cm_buf_append_html(struct cm_buf *b, const char *s, size_t n);
/* Appends [s, s+n) as a JSON string literal with its quotes (RFC 8259 §7): '"' and '\\'
 * backslash-escaped, '\n' as \n, other control characters and DEL as \u00XX. Bytes >= 0x80
 * are copied as they are: the caller passes valid UTF-8 (cm_utf8_valid). */
void cm_buf_append_json(struct cm_buf *b, const char *s, size_t n);
/* Moves the data out (caller frees) and resets the buffer. */
char *cm_buf_take(struct cm_buf *b, size_t *len);
void cm_buf_free(struct cm_buf *b);

#endif
