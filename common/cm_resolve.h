/* Host-name resolution off the callers' threads.
 *
 * getaddrinfo(3) blocks for as long as the system resolver takes: the resolv.conf timeout
 * times its attempts times the search domains (30 s was seen in a compose container whose
 * DNS server was being restarted). A page request or the chat's event loop must never wait
 * on that. One background thread resolves every name asked for here (getaddrinfo, AF_UNSPEC,
 * SOCK_STREAM; the first answer, in the order of RFC 6724 as glibc sorts it) and keeps the
 * latest answer; callers only read that cache, then connect to the numeric address with the
 * connect timeout they already have. Names are looked up again every CM_RESOLVE_REFRESH_MS
 * and when a caller asks (cm_resolve_refresh), so an address that moved is followed. A name
 * that stops resolving keeps its last address (a connect to it fails on its own).
 *
 * Thread-safe. The thread starts on first use; cm_resolve_stop ends it (at exit). */
#ifndef CM_RESOLVE_H
#define CM_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>

#define CM_RESOLVE_ADDR_MAX 46 /* INET6_ADDRSTRLEN: the longest numeric address, with NUL */
#define CM_RESOLVE_MAX_HOSTS 8 /* distinct names one process resolves (a daemon needs 2-3) */
#define CM_RESOLVE_NAME_MAX 256
#define CM_RESOLVE_REFRESH_MS 10000

/* Copies host's address in numeric form into out (outlen >= CM_RESOLVE_ADDR_MAX). True at
 * once when host already is an IPv4 or IPv6 literal (copied as it is) or when its address is
 * known; false when it is not known yet (the thread is asked to look it up: call again
 * later), when host is empty or longer than CM_RESOLVE_NAME_MAX - 1, when
 * CM_RESOLVE_MAX_HOSTS other names are already registered, or when the thread cannot start.
 * Never waits on DNS. */
bool cm_resolve_numeric(const char *host, char *out, size_t outlen);

/* As cm_resolve_numeric, but waits up to timeout_ms (0..600000) for a first answer. For
 * start-up paths and background threads only: never on a request path or an event loop. */
bool cm_resolve_wait(const char *host, char *out, size_t outlen, long timeout_ms);

/* Asks the thread to look host up again now (a connect to its cached address failed: the
 * service may have moved). No effect for a literal or an unregistered name. */
void cm_resolve_refresh(const char *host);

/* Ends the thread (joins it; at most one getaddrinfo call long) and forgets every name. */
void cm_resolve_stop(void);

#endif
