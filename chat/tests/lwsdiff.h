/* Differential harness: feeds one byte stream to the frame guard's tracker (rawguard.c)
 * and to a real libwebsockets 4.1.6 server running in this process on 127.0.0.1 (a client
 * socket sends the bytes, then half-closes), and compares what each made of it. Used by
 * test_rawguard_lws.c (fixed cases) and fuzz/fuzz_rawguard.c (libFuzzer). Single-threaded:
 * everything runs on the caller's thread. */
#ifndef CHAT_LWSDIFF_H
#define CHAT_LWSDIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "rawguard.h"

/* What lws did with one connection. */
struct lwsdiff_obs {
    bool established; /* LWS_CALLBACK_ESTABLISHED: lws switched to WebSocket framing */
    bool marker;      /* lws delivered the payload of the unmasked marker frame */
    unsigned frames;  /* complete data frames lws delivered (LWS_CALLBACK_RECEIVE) */
    unsigned http;    /* plain HTTP requests lws served (LWS_CALLBACK_HTTP) */
    bool closed;      /* lws closed the connection before the harness's deadline */
};

/* Starts the lws server (port chosen by the kernel); 0 or -1. */
int lwsdiff_start(void);
void lwsdiff_stop(void);
/* Sends p[0..split) on a new connection, lets lws read and parse it, sends p[split..n),
 * half-closes and waits (at most a few seconds) until lws closes the connection. */
int lwsdiff_lws(const unsigned char *p, size_t n, size_t split, struct lwsdiff_obs *o);
/* The tracker on p[0..n), fed at once and again byte by byte; false (and why) if the two
 * feeds disagree. */
bool lwsdiff_scan(const unsigned char *p, size_t n, struct chat_wsscan *out, char *why,
                  size_t whylen);

/* Compares the two on `head` followed by frames: (A) head + two masked text frames and (B)
 * head + a masked frame + an unmasked marker frame + a masked frame. Agreement means: in
 * (B), if lws parsed the unmasked frame, the tracker refused the stream at or before it;
 * in (A), if the tracker did not refuse, lws upgraded only if the tracker did, and then
 * both saw the same frames. With strict, also: the tracker refused nothing and upgraded
 * exactly when lws did (for heads a real client sends). Returns true if they agree; else
 * writes why. *refused (if not NULL) tells whether the tracker refused (A). */
bool lwsdiff_check(const unsigned char *head, size_t n, bool strict, bool *refused, char *why,
                   size_t whylen);

#endif
