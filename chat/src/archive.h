/* The message archive (MongoDB) and the room-deletion consumer: threads of their own, so the
 * lws thread never waits for MongoDB or for a blocking Redis call.
 *
 * Writer thread: reads the Redis stream `parley:outbox` as consumer group `archivers`
 * (XREADGROUP, its own blocking hiredis connection), upserts each batch into the collection
 * `messages` of database CHAT_MONGO_DB (`update` with `$setOnInsert`, `upsert: true`, keyed by
 * {rid, seq}, unique index: a second delivery of one entry changes nothing), then XACK + XDEL of
 * the batch once MongoDB acknowledged the write (the URI's write concern). Entries another consumer
 * read and left pending longer than CHAT_ARCHIVE_CLAIM_MS (a dead chat daemon) are taken over
 * with XAUTOCLAIM. Redis and MongoDB failures are retried with backoff; nothing is acked before
 * it is written, so an outage only makes the outbox grow (the publish script bounds it).
 *
 * Reader threads: answer chat_archive_query / chat_archive_max_seq from a bounded queue
 * (CHAT_HISTORY_QUEUE) and hand results to the lws thread (chat_archive_drain), waking it with
 * lws_cancel_service() (lws minimal-ws-server-threads, v4.1.6).
 *
 * Deleter thread: reads `parley:room-deletions` as group `deleters` (the website XADDs `rid`),
 * deletes the room's documents (delete_many {rid}) and its Redis keys `parley:{r<rid>}:*`,
 * then XACKs. Keys and streams: docs/database.md; settings: docs/operations.md. */
#ifndef CHAT_ARCHIVE_H
#define CHAT_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

struct chat_config;
struct lws_context;

/* Stream and group names (docs/database.md). */
#define CHAT_ARCHIVE_OUTBOX "parley:outbox"
#define CHAT_ARCHIVE_GROUP "archivers"
#define CHAT_ARCHIVE_DELETIONS "parley:room-deletions"
#define CHAT_ARCHIVE_DELETERS "deleters"
/* Entries MongoDB refused for good (one document, never the connection): kept for operators. */
#define CHAT_ARCHIVE_DEAD "parley:outbox:dead"
/* Largest `limit` of one query; larger asks are cut to it. */
#define CHAT_ARCHIVE_QUERY_MAX 1000u
/* Largest room id (rooms.id; tokens carry it as a JSON number, exact up to 2^53). */
#define CHAT_ARCHIVE_RID_MAX 9007199254740991LL

struct chat_archive; /* opaque */

/* Starts the writer, reader and deleter threads with the settings of cfg (CHAT_REDIS_*,
 * CHAT_MONGO_URI, CHAT_MONGO_DB, CHAT_ARCHIVE_BATCH, CHAT_ARCHIVE_CLAIM_MS,
 * CHAT_HISTORY_QUEUE). cfg is borrowed and must outlive the archive. Neither Redis nor MongoDB
 * needs to be up: the threads connect (and reconnect) in the background. Calls mongoc_init()
 * once per process. Returns NULL (logged) only when CHAT_MONGO_URI does not parse or a thread
 * cannot be started. */
struct chat_archive *chat_archive_new(const struct chat_config *cfg);

/* Stops and joins every thread (a blocking Redis read ends within its BLOCK time, 500 ms;
 * a MongoDB call within its timeouts), frees pending requests and undrained results.
 * Accepts NULL. */
void chat_archive_free(struct chat_archive *a);

/* Asks for up to `limit` (1..CHAT_ARCHIVE_QUERY_MAX, larger is cut) messages of room `rid`
 * with seq in [from, to] (inclusive), oldest first; never blocks. The answer arrives later
 * through chat_archive_drain() with this tag. Returns 0 when queued, -1 (and posts nothing)
 * when the request queue (CHAT_HISTORY_QUEUE) is full or the archive is stopping. */
int chat_archive_query(struct chat_archive *a, uint64_t tag, int64_t rid, uint64_t from,
                       uint64_t to, unsigned limit);

/* Asks for the largest seq archived for rid (0 if none) in result.max_seq; queued and
 * answered like a query (n = 0). Returns 0 or -1 as chat_archive_query. */
int chat_archive_max_seq(struct chat_archive *a, uint64_t tag, int64_t rid);

/* One finished request. status 0: frames[0..n-1] are the stored frames (exactly the bytes
 * clients got, each NUL-terminated, lens[i] bytes) in ascending seq; max_seq is the largest
 * seq among them (query) or archived for the room (max_seq request). status -1: MongoDB
 * failed or the archive stopped (n = 0); the caller answers `unavailable`. */
struct chat_archive_result {
    uint64_t tag;
    int status;
    size_t n;
    char **frames;
    size_t *lens;
    uint64_t max_seq;
};

/* Call on the lws thread (LWS_CALLBACK_EVENT_WAIT_CANCELLED) or any one thread: hands each
 * finished result to cb, which takes ownership (chat_archive_result_free). */
void chat_archive_drain(struct chat_archive *a, void (*cb)(void *ud, struct chat_archive_result *r),
                        void *ud);

/* From now on each finished result calls lws_cancel_service(ctx) (NULL: no wake-up). Set it
 * after lws_create_context; before lws_context_destroy, call chat_archive_free (or set NULL),
 * so no thread wakes a destroyed context. Results that finish before the waker is set wait
 * for the next chat_archive_drain. */
void chat_archive_set_waker(struct chat_archive *a, struct lws_context *ctx);

/* Frees a result and its frames. Accepts NULL. */
void chat_archive_result_free(struct chat_archive_result *r);

/* Counters for /metrics, read with atomics from any thread.
 * archived: outbox entries written (acknowledged by MongoDB) and acked; write_errors: failed
 * Redis or MongoDB calls of the writer and deleter; read_errors: failed queries; queue_depth:
 * requests waiting for a reader; lag_ms: age of the oldest entry of the last batch when it was
 * written (0 when the outbox was empty); rooms_deleted: room deletions completed; claimed:
 * entries taken over from other consumers (XAUTOCLAIM); dead: entries MongoDB refused for
 * good, moved to CHAT_ARCHIVE_DEAD (alert on any); writes / write_ms_total: MongoDB bulk writes
 * and the milliseconds they took in all (their ratio is the mean latency; Prometheus: rate of
 * each); reads / read_ms_total: the same for history queries. */
struct chat_archive_stats {
    uint64_t archived, write_errors, read_errors, queue_depth, lag_ms;
    uint64_t rooms_deleted, claimed, dead;
    uint64_t writes, write_ms_total, reads, read_ms_total;
};
void chat_archive_stats(const struct chat_archive *a, struct chat_archive_stats *out);

#endif
