/* The latest chat seq of rooms, read from Redis for unread counts: key parley:{r<rid>}:seq
 * (a string integer the chat daemon sets; absent = 0: docs/database.md, Redis keys). One
 * shared synchronous hiredis connection (WEB_REDIS_HOST/PORT/PASSWORD, connect and command
 * timeout WEB_SEQS_TIMEOUT_MS), used under a mutex for one MGET per page; after a failure
 * Redis is not tried again for WEB_SEQS_RETRY_MS, so pages never wait on a Redis that is
 * down. Source: hiredis 0.14 (hiredis.h: redisConnectWithTimeout, redisSetTimeout,
 * redisCommandArgv); Redis MGET (redis.io/commands/mget). */
#ifndef WEB_SEQS_H
#define WEB_SEQS_H

#include <stddef.h>
#include <stdint.h>

#define WEB_SEQS_MAX 200        /* rooms in one MGET (WEB_ROOMS_LIST_MAX) */
#define WEB_SEQS_TIMEOUT_MS 300 /* connect and MGET timeout: unread is shown as unknown after */
#define WEB_SEQS_RETRY_MS 2000  /* after a failure, answer unknown without trying for this long */

/* Writes the latest seq of each of the n (<= WEB_SEQS_MAX) rooms rids[i] to out[i] (0 for a
 * room with no message yet). Returns 0, or -1 when Redis could not answer (out untouched:
 * the caller shows unread as unknown). Any thread. */
int web_seqs_latest(const int64_t *rids, size_t n, long long *out);

/* Closes the shared connection (at shutdown). */
void web_seqs_close(void);

#endif
