/* The MongoDB archive against a real Redis and the MongoDB stand-in (scripts/mongo-standin:
 * wire-compatible, NOT MongoDB: it does not enforce unique indexes, so every "exactly once"
 * below is counted, never left to an index). Links archive.c without rawguard.c.
 *
 * What a user of the history would check: every outbox entry becomes exactly one document
 * with the frame clients got; a second delivery (re-sent entry, entries left pending by a
 * dead consumer) adds nothing; MongoDB down for ~10 s: the outbox grows, then drains with no
 * loss or duplicate; Redis restarted (with and without its data); a 300-message query comes
 * back whole and in order; a room deletion removes its documents and exactly its keys. */
#define _DEFAULT_SOURCE   /* mkdtemp, usleep */
#define _XOPEN_SOURCE 700 /* nftw */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <mongoc/mongoc.h>

#include "archive.h"
#include "chat.h"
#include "cm_log.h"

#ifndef PARLEY_SOURCE_DIR
#error "PARLEY_SOURCE_DIR must name the repository root"
#endif

#define WAIT_MS 30000 /* upper bound of every wait for the archive (never a timing assert) */

static char tmpdir[64];
static int redis_port, mongo_port;
static pid_t redis_pid, mongo_pid;
static struct chat_config cfg;
static struct chat_archive *arch;
static mongoc_client_t *mongo;
static char mongo_uri[128];

/* ---- processes ---- */

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        getsockname(s, (struct sockaddr *)&sa, &sl) < 0)
        abort();
    close(s);
    return ntohs(sa.sin_port);
}

static pid_t spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = fopen(log, "a");
        if (f) {
            dup2(fileno(f), 1);
            dup2(fileno(f), 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* SIGTERM, then SIGKILL after 3 s (the stand-in waits for its clients to hang up). */
static void stop(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGTERM);
    for (int i = 0; i < 60; i++) {
        if (waitpid(*pid, NULL, WNOHANG) == *pid) {
            *pid = 0;
            return;
        }
        usleep(50000);
    }
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    *pid = 0;
}

static bool port_open(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(s, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(s);
    return ok;
}

static void wait_port(int port)
{
    for (int i = 0; i < 300 && !port_open(port); i++)
        usleep(50000);
    assert_true(port_open(port));
}

/* Redis with its data in dir (AOF, fsync always), or none (--save '' only). */
static void redis_start(const char *dir)
{
    char port[16], log[128];
    snprintf(port, sizeof port, "%d", redis_port);
    snprintf(log, sizeof log, "%s/redis.log", tmpdir);
    if (dir) {
        char *argv[] = {
            "redis-server", "--port",    port,           "--bind", "127.0.0.1",     "--save", "",
            "--dir",        (char *)dir, "--appendonly", "yes",    "--appendfsync", "always", NULL};
        redis_pid = spawn(argv, log);
    } else {
        char *argv[] = {"redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", NULL};
        redis_pid = spawn(argv, log);
    }
    wait_port(redis_port);
    /* and until it has loaded its data (LOADING errors before) */
    for (int i = 0; i < 300; i++) {
        struct timeval tv = {1, 0};
        redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
        redisReply *r = c && !c->err ? redisCommand(c, "PING") : NULL;
        bool up = r && r->type == REDIS_REPLY_STATUS;
        if (r)
            freeReplyObject(r);
        if (c)
            redisFree(c);
        if (up)
            return;
        usleep(50000);
    }
    fail_msg("redis did not come up");
}

static void mongo_start(void)
{
    char port[16], log[128], storage[128], script[512];
    snprintf(port, sizeof port, "%d", mongo_port);
    snprintf(log, sizeof log, "%s/mongo.log", tmpdir);
    snprintf(storage, sizeof storage, "%s/mongo-data", tmpdir);
    snprintf(script, sizeof script, "%s/scripts/mongo-standin/server.mjs", PARLEY_SOURCE_DIR);
    char *argv[] = {"node", script, "--port", port, "--storage", storage, NULL};
    mongo_pid = spawn(argv, log);
    wait_port(mongo_port);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* ---- Redis and MongoDB as the test sees them ---- */

static redisReply *cmd(const char *fmt, ...)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    assert_non_null(r);
    return r;
}

static long long cmd_int(const char *fmt, ...)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
    assert_non_null(c);
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    assert_non_null(r);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
        r->element[0]->type == REDIS_REPLY_INTEGER)
        v = r->element[0]->integer; /* XPENDING summary: the count */
    freeReplyObject(r);
    return v;
}

static void frame_of(char *out, size_t n, int64_t rid, int64_t seq, const char *text)
{
    snprintf(out, n,
             "{\"type\":\"message\",\"id\":\"t-%" PRId64 "-%" PRId64 "\",\"seq\":%" PRId64
             ",\"client_id\":\"c%" PRId64 "\",\"room\":\"r%" PRId64
             "\",\"user\":{\"id\":\"u_1\",\"name\":\"Zoë \\\"Z\\\"\"},\"text\":\"%s %" PRId64
             "\",\"ts\":1700000000%03" PRId64 "}",
             rid, seq, seq, seq, rid, text, seq, seq % 1000);
}

static void outbox_add(int64_t rid, int64_t seq, const char *text)
{
    char frame[512], r[24], s[24];
    frame_of(frame, sizeof frame, rid, seq, text);
    snprintf(r, sizeof r, "%" PRId64, rid);
    snprintf(s, sizeof s, "%" PRId64, seq);
    redisReply *rep = cmd("XADD %s * rid %s seq %s m %s", CHAT_ARCHIVE_OUTBOX, r, s, frame);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    freeReplyObject(rep);
}

static mongoc_collection_t *coll(void)
{
    return mongoc_client_get_collection(mongo, "parley_test", "messages");
}

/* Documents of rid (-1 on error); with seqs, checks that seq 1..n appear exactly once each. */
static long long doc_count(int64_t rid)
{
    mongoc_collection_t *c = coll();
    bson_t *f = BCON_NEW("rid", BCON_INT64(rid));
    bson_error_t err;
    int64_t n = mongoc_collection_count_documents(c, f, NULL, NULL, NULL, &err);
    bson_destroy(f);
    mongoc_collection_destroy(c);
    return n;
}

/* Every document of rid: seq 1..n exactly once and its frame byte-equal to what was sent. */
static void check_docs(int64_t rid, int n, const char *text)
{
    mongoc_collection_t *c = coll();
    bson_t *f = BCON_NEW("rid", BCON_INT64(rid));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, f, NULL, NULL);
    int *seen = calloc((size_t)n + 1, sizeof *seen);
    const bson_t *doc;
    int total = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        assert_true(bson_iter_init_find(&it, doc, "seq"));
        int64_t seq = bson_iter_as_int64(&it);
        assert_true(seq >= 1 && seq <= n);
        seen[seq]++;
        total++;
        char want[512];
        frame_of(want, sizeof want, rid, seq, text);
        uint32_t len;
        assert_true(bson_iter_init_find(&it, doc, "frame"));
        assert_string_equal(bson_iter_utf8(&it, &len), want);
        assert_true(bson_iter_init_find(&it, doc, "ts"));
        assert_int_equal(bson_iter_as_int64(&it), 1700000000000 + seq % 1000);
        assert_true(bson_iter_init_find(&it, doc, "text"));
        char txt[64];
        snprintf(txt, sizeof txt, "%s %" PRId64, text, seq);
        assert_string_equal(bson_iter_utf8(&it, &len), txt);
    }
    bson_error_t err;
    assert_false(mongoc_cursor_error(cur, &err));
    for (int i = 1; i <= n; i++)
        if (seen[i] != 1)
            fail_msg("room %" PRId64 " seq %d archived %d times", rid, i, seen[i]);
    assert_int_equal(total, n);
    free(seen);
    mongoc_cursor_destroy(cur);
    bson_destroy(f);
    mongoc_collection_destroy(c);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until the outbox is empty (everything archived, acked and deleted). */
static void wait_outbox_empty(void)
{
    int64_t end = mono_ms() + WAIT_MS;
    while (cmd_int("XLEN %s", CHAT_ARCHIVE_OUTBOX) != 0 && mono_ms() < end)
        usleep(50000);
    assert_int_equal(cmd_int("XLEN %s", CHAT_ARCHIVE_OUTBOX), 0);
    assert_int_equal(cmd_int("XPENDING %s %s", CHAT_ARCHIVE_OUTBOX, CHAT_ARCHIVE_GROUP), 0);
}

static void wait_docs(int64_t rid, long long n)
{
    int64_t end = mono_ms() + WAIT_MS;
    while (doc_count(rid) != n && mono_ms() < end)
        usleep(50000);
    assert_int_equal(doc_count(rid), n);
}

/* ---- query results ---- */

static struct chat_archive_result *got[64];
static size_t ngot;

static void take(void *ud, struct chat_archive_result *r)
{
    (void)ud;
    assert_true(ngot < 64);
    got[ngot++] = r;
}

/* The next result (any tag when tag is 0). */
static struct chat_archive_result *wait_result(uint64_t tag)
{
    int64_t end = mono_ms() + WAIT_MS;
    while (!ngot && mono_ms() < end) {
        chat_archive_drain(arch, take, NULL);
        if (!ngot)
            usleep(10000);
    }
    assert_true(ngot > 0);
    struct chat_archive_result *r = got[0];
    memmove(got, got + 1, --ngot * sizeof *got);
    if (tag)
        assert_int_equal(r->tag, tag);
    return r;
}

/* ---- the tests, in order (they share the servers and the archive) ---- */

/* Entries a consumer read and never acked (it crashed) are claimed and archived once. */
static void test_claims_dead_consumers_entries(void **state)
{
    (void)state;
    /* before the archive runs: a "dead" consumer reads 20 entries and never acks them */
    redisReply *r = cmd("XGROUP CREATE %s %s 0 MKSTREAM", CHAT_ARCHIVE_OUTBOX, CHAT_ARCHIVE_GROUP);
    freeReplyObject(r);
    for (int s = 1; s <= 20; s++)
        outbox_add(12, s, "claimed");
    r = cmd("XREADGROUP GROUP %s ghost COUNT 100 STREAMS %s >", CHAT_ARCHIVE_GROUP,
            CHAT_ARCHIVE_OUTBOX);
    freeReplyObject(r);
    assert_int_equal(cmd_int("XPENDING %s %s", CHAT_ARCHIVE_OUTBOX, CHAT_ARCHIVE_GROUP), 20);

    arch = chat_archive_new(&cfg);
    assert_non_null(arch);
    wait_outbox_empty();
    check_docs(12, 20, "claimed");
    struct chat_archive_stats st;
    chat_archive_stats(arch, &st);
    assert_int_equal(st.claimed, 20);
    assert_int_equal(st.archived, 20);
}

static void test_archives_each_entry_once(void **state)
{
    (void)state;
    for (int s = 1; s <= 100; s++)
        outbox_add(11, s, "hello");
    wait_outbox_empty();
    check_docs(11, 100, "hello");
    /* the index was created with the createIndexes command */
    mongoc_collection_t *c = coll();
    mongoc_cursor_t *cur = mongoc_collection_find_indexes_with_opts(c, NULL);
    const bson_t *doc;
    bool found = false;
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        uint32_t len;
        if (bson_iter_init_find(&it, doc, "name") &&
            strcmp(bson_iter_utf8(&it, &len), "rid_1_seq_1") == 0)
            found = true;
    }
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(c);
    assert_true(found);
}

/* The same (rid, seq) delivered again — a consumer that wrote and crashed before XACK, its
 * entries re-read by another one — adds no document and changes none. */
static void test_second_delivery_changes_nothing(void **state)
{
    (void)state;
    for (int s = 1; s <= 10; s++)
        outbox_add(11, s, "again"); /* same rid and seq, other bytes: first write wins */
    /* a consumer that wrote seq 11..20 and crashed before XACK: its entries sit in its pending
     * list (MULTI: the archive cannot read them first) until the archive claims them */
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
    assert_non_null(c);
    freeReplyObject(redisCommand(c, "MULTI"));
    for (int s = 11; s <= 20; s++) {
        char frame[512], sq[16];
        frame_of(frame, sizeof frame, 11, s, "hello");
        snprintf(sq, sizeof sq, "%d", s);
        freeReplyObject(
            redisCommand(c, "XADD %s * rid 11 seq %s m %s", CHAT_ARCHIVE_OUTBOX, sq, frame));
    }
    freeReplyObject(redisCommand(c, "XREADGROUP GROUP %s ghost COUNT 10 STREAMS %s >",
                                 CHAT_ARCHIVE_GROUP, CHAT_ARCHIVE_OUTBOX));
    redisReply *r = redisCommand(c, "EXEC");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 11);
    assert_int_equal(r->element[10]->type, REDIS_REPLY_ARRAY); /* ghost got them */
    freeReplyObject(r);
    redisFree(c);
    struct chat_archive_stats before, after;
    chat_archive_stats(arch, &before);
    wait_outbox_empty();
    check_docs(11, 100, "hello");
    chat_archive_stats(arch, &after);
    assert_true(after.claimed >= before.claimed + 10);
}

static void test_drops_malformed_entries(void **state)
{
    (void)state;
    const char *bad[][2] = {{"abc", "1"}, {"0", "1"},  {"-3", "1"},
                            {"18", "0"},  {"18", "x"}, {"99999999999999999999", "1"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        freeReplyObject(
            cmd("XADD %s * rid %s seq %s m {}", CHAT_ARCHIVE_OUTBOX, bad[i][0], bad[i][1]));
    freeReplyObject(cmd("XADD %s * rid 18 seq 1", CHAT_ARCHIVE_OUTBOX)); /* no m */
    outbox_add(18, 2, "after");
    wait_outbox_empty();
    assert_int_equal(doc_count(18), 1);
    assert_int_equal(doc_count(0), 0);
}

/* A document MongoDB refuses for good (here: a frame over the archive's size limit) must not
 * block the outbox forever, nor vanish: it moves to parley:outbox:dead; its neighbours are
 * archived. */
static void test_refused_document_goes_to_dead_letter_stream(void **state)
{
    (void)state;
    size_t big = (4u << 20) + 1;
    char *m = malloc(big + 1);
    memset(m, 'x', big);
    m[big] = '\0';
    outbox_add(19, 1, "before");
    freeReplyObject(cmd("XADD %s * rid 19 seq 2 m %b", CHAT_ARCHIVE_OUTBOX, m, big));
    outbox_add(19, 3, "before");
    free(m);
    /* not UTF-8 (BSON strings must be): refused before it is sent */
    freeReplyObject(
        cmd("XADD %s * rid 19 seq 4 m %b", CHAT_ARCHIVE_OUTBOX, "{\"text\":\"\xff\"}", (size_t)12));
    outbox_add(19, 5, "before");
    wait_outbox_empty();
    assert_int_equal(doc_count(19), 3);
    assert_int_equal(cmd_int("XLEN %s", CHAT_ARCHIVE_DEAD), 2);
    redisReply *r = cmd("XRANGE %s - +", CHAT_ARCHIVE_DEAD);
    assert_int_equal(r->elements, 2);
    const redisReply *kv = r->element[0]->element[1];
    assert_int_equal(kv->elements, 8);
    assert_string_equal(kv->element[1]->str, "19");
    assert_string_equal(kv->element[3]->str, "2");
    assert_int_equal(kv->element[5]->len, big);
    kv = r->element[1]->element[1];
    assert_string_equal(kv->element[3]->str, "4");
    assert_string_equal(kv->element[7]->str, "frame is not valid UTF-8");
    freeReplyObject(r);
    struct chat_archive_stats st;
    chat_archive_stats(arch, &st);
    assert_int_equal(st.dead, 2);
}

static void test_query_300_messages(void **state)
{
    (void)state;
    for (int s = 1; s <= 300; s++)
        outbox_add(16, s, "page");
    wait_outbox_empty();
    assert_int_equal(chat_archive_query(arch, 7, 16, 1, 300, 300), 0);
    struct chat_archive_result *r = wait_result(7);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->n, 300);
    assert_int_equal(r->max_seq, 300);
    for (size_t i = 0; i < r->n; i++) {
        char want[512];
        frame_of(want, sizeof want, 16, (int64_t)i + 1, "page");
        assert_int_equal(r->lens[i], strlen(want));
        assert_string_equal(r->frames[i], want);
    }
    chat_archive_result_free(r);

    /* a window in the middle, cut by the limit: 101..150 */
    assert_int_equal(chat_archive_query(arch, 8, 16, 101, 200, 50), 0);
    r = wait_result(8);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->n, 50);
    char want[512];
    frame_of(want, sizeof want, 16, 101, "page");
    assert_string_equal(r->frames[0], want);
    frame_of(want, sizeof want, 16, 150, "page");
    assert_string_equal(r->frames[49], want);
    chat_archive_result_free(r);

    /* another room's messages never leak in; empty ranges are empty */
    assert_int_equal(chat_archive_query(arch, 9, 999, 1, 300, 100), 0);
    r = wait_result(9);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->n, 0);
    chat_archive_result_free(r);
    assert_int_equal(chat_archive_query(arch, 10, 16, 20, 10, 100), 0);
    r = wait_result(10);
    assert_int_equal(r->n, 0);
    chat_archive_result_free(r);

    struct chat_archive_stats st;
    chat_archive_stats(arch, &st);
    assert_true(st.reads >= 4);
    assert_true(st.writes >= 1);
    assert_int_equal(st.read_errors, 0);
    assert_int_equal(st.queue_depth, 0);
    assert_int_equal(chat_archive_max_seq(arch, 11, 16), 0);
    r = wait_result(11);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->max_seq, 300);
    chat_archive_result_free(r);
    assert_int_equal(chat_archive_max_seq(arch, 12, 999), 0);
    r = wait_result(12);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->max_seq, 0);
    chat_archive_result_free(r);
}

/* MongoDB down ~10 s while entries keep coming: nothing is acked, the outbox grows; queries
 * answer unavailable, the request queue stays bounded; then everything arrives exactly once.
 * A room deleted meanwhile is deleted after its pending messages were archived. */
static void test_mongo_down_outbox_grows_then_drains(void **state)
{
    (void)state;
    fprintf(stderr, "stopping the MongoDB stand-in for ~10 s\n");
    stop(&mongo_pid);
    outbox_add(17, 1, "doomed");
    outbox_add(17, 2, "doomed");
    freeReplyObject(cmd("XADD %s * rid 17", CHAT_ARCHIVE_DELETIONS));

    int refused = 0;
    for (int i = 0; i < 20; i++)
        refused += chat_archive_query(arch, 100 + (uint64_t)i, 11, 1, 10, 10) < 0;
    /* 2 readers hold a request each, CHAT_HISTORY_QUEUE (4) more wait, the rest is refused */
    assert_true(refused > 0);
    struct chat_archive_stats st;
    chat_archive_stats(arch, &st);
    assert_true(st.queue_depth <= 4);

    for (int s = 1; s <= 200; s++) {
        outbox_add(13, s, "outage");
        usleep(50000); /* 200 entries over ~10 s */
    }
    assert_true(cmd_int("XLEN %s", CHAT_ARCHIVE_OUTBOX) >= 200); /* nothing acked meanwhile */
    /* every query that was taken is answered, as `unavailable` */
    for (int i = 0; i < 20 - refused; i++) {
        struct chat_archive_result *r = wait_result(0);
        assert_true(r->tag >= 100 && r->tag < 120);
        assert_int_equal(r->status, -1);
        assert_int_equal(r->n, 0);
        chat_archive_result_free(r);
    }

    mongo_start();
    fprintf(stderr, "MongoDB stand-in back\n");
    wait_outbox_empty();
    check_docs(13, 200, "outage");
    check_docs(11, 100, "hello"); /* stored before the outage, still there once */
    int64_t end = mono_ms() + WAIT_MS;
    while (cmd_int("XLEN %s", CHAT_ARCHIVE_DELETIONS) != 0 && mono_ms() < end)
        usleep(50000);
    assert_int_equal(cmd_int("XLEN %s", CHAT_ARCHIVE_DELETIONS), 0);
    assert_int_equal(doc_count(17), 0);
    chat_archive_stats(arch, &st);
    assert_true(st.write_errors > 0);
    assert_true(st.read_errors > 0);
}

static void test_redis_restarted(void **state)
{
    (void)state;
    /* the dead "ghost" consumer, nothing pending since its entries were claimed, is dropped
     * from the group once idle for 10 x CHAT_ARCHIVE_CLAIM_MS */
    int64_t end = mono_ms() + WAIT_MS;
    bool ghost = true;
    while (ghost && mono_ms() < end) {
        redisReply *r = cmd("XINFO CONSUMERS %s %s", CHAT_ARCHIVE_OUTBOX, CHAT_ARCHIVE_GROUP);
        ghost = false;
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
            if (r->element[i]->elements >= 2 &&
                strcmp(r->element[i]->element[1]->str, "ghost") == 0)
                ghost = true;
        assert_true(r->type == REDIS_REPLY_ARRAY && r->elements >= 1); /* we are still there */
        freeReplyObject(r);
        if (ghost)
            usleep(100000);
    }
    assert_false(ghost);
    fprintf(stderr, "restarting Redis (with its data)\n");
    stop(&redis_pid);
    char dir[96];
    snprintf(dir, sizeof dir, "%s/redis-data", tmpdir);
    redis_start(dir);
    for (int s = 1; s <= 50; s++)
        outbox_add(14, s, "after restart");
    wait_outbox_empty();
    check_docs(14, 50, "after restart");

    fprintf(stderr, "restarting Redis empty (its consumer groups are gone)\n");
    stop(&redis_pid);
    redis_start(NULL);
    for (int s = 1; s <= 50; s++)
        outbox_add(15, s, "fresh redis");
    /* the writer creates the group again; entries added before that are read from 0 */
    end = mono_ms() + WAIT_MS;
    while (doc_count(15) != 50 && mono_ms() < end)
        usleep(50000);
    wait_outbox_empty();
    check_docs(15, 50, "fresh redis");
}

static void test_room_deletion(void **state)
{
    (void)state;
    /* keys of room 16 (and look-alikes of other rooms that must stay) */
    freeReplyObject(cmd("SET parley:{r16}:seq 300"));
    freeReplyObject(cmd("XADD parley:{r16}:stream 1-1 m x"));
    freeReplyObject(cmd("SET parley:{r160}:seq 5"));
    freeReplyObject(cmd("SET parley:{r1}:seq 5"));
    freeReplyObject(cmd("SET parley:{r11}:seq 100"));
    /* more idempotency keys than one SCAN batch looks at */
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
    assert_non_null(c);
    for (int i = 0; i < 2500; i++)
        redisAppendCommand(c, "SET parley:{r16}:idem:u_%d:c%d 1 EX 600", i % 7, i);
    for (int i = 0; i < 2500; i++) {
        void *rp;
        assert_int_equal(redisGetReply(c, &rp), REDIS_OK);
        freeReplyObject(rp);
    }
    redisFree(c);
    assert_int_equal(cmd_int("DBSIZE"), 2500 + 5 + 2); /* + outbox and deletions streams */

    freeReplyObject(cmd("XADD %s * rid 16", CHAT_ARCHIVE_DELETIONS));
    freeReplyObject(cmd("XADD %s * rid banana", CHAT_ARCHIVE_DELETIONS)); /* dropped */
    wait_docs(16, 0);
    int64_t end = mono_ms() + WAIT_MS;
    while (cmd_int("DBSIZE") != 6 && mono_ms() < end)
        usleep(50000);
    /* what is left: the tombstone, the three look-alikes, the two streams */
    assert_int_equal(cmd_int("DBSIZE"), 6);
    assert_int_equal(cmd_int("EXISTS parley:{r16}:deleted"), 1);
    assert_int_equal(cmd_int("EXISTS parley:{r160}:seq parley:{r1}:seq parley:{r11}:seq"), 3);
    assert_int_equal(cmd_int("EXISTS %s %s", CHAT_ARCHIVE_OUTBOX, CHAT_ARCHIVE_DELETIONS), 2);
    assert_int_equal(cmd_int("XLEN %s", CHAT_ARCHIVE_DELETIONS), 0);
    check_docs(11, 100, "hello"); /* other rooms untouched */
    struct chat_archive_stats st;
    chat_archive_stats(arch, &st);
    assert_int_equal(st.rooms_deleted, 2); /* 17 and 16 */
}

static int setup(void **state)
{
    (void)state;
    cm_log_init("test-archive", CM_LOG_INFO);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/parley-archive-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    char dir[96];
    snprintf(dir, sizeof dir, "%s/redis-data", tmpdir);
    mkdir(dir, 0700);
    redis_port = free_port();
    mongo_port = free_port();
    fprintf(stderr,
            "test_archive: real Redis on %d; MongoDB is the STAND-IN (scripts/mongo-standin, "
            "not MongoDB) on %d; files in %s\n",
            redis_port, mongo_port, tmpdir);
    redis_start(dir);
    mongo_start();
    mongoc_init();
    snprintf(mongo_uri, sizeof mongo_uri,
             "mongodb://127.0.0.1:%d/?appname=test-archive&serverSelectionTimeoutMS=3000",
             mongo_port);
    mongo = mongoc_client_new(mongo_uri);

    static char host[] = "127.0.0.1", pw[] = "", db[] = "parley_test";
    cfg.redis_host = host;
    cfg.redis_port = redis_port;
    cfg.redis_password = pw;
    cfg.redis_timeout_ms = 2000;
    cfg.mongo_uri = mongo_uri;
    cfg.mongo_db = db;
    cfg.archive_batch = 64;
    cfg.archive_claim_ms = 1000;
    cfg.history_queue = 4;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    chat_archive_free(arch);
    if (mongo)
        mongoc_client_destroy(mongo);
    stop(&mongo_pid);
    stop(&redis_pid);
    if (!getenv("PARLEY_KEEP_TMP"))
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claims_dead_consumers_entries),
        cmocka_unit_test(test_archives_each_entry_once),
        cmocka_unit_test(test_second_delivery_changes_nothing),
        cmocka_unit_test(test_drops_malformed_entries),
        cmocka_unit_test(test_refused_document_goes_to_dead_letter_stream),
        cmocka_unit_test(test_query_300_messages),
        cmocka_unit_test(test_mongo_down_outbox_grows_then_drains),
        cmocka_unit_test(test_redis_restarted),
        cmocka_unit_test(test_room_deletion),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
