/* The chat daemon's configuration table: every limit is here with its default and range. */
#include "chat.h"
#include "handshake.h"

#include <stdio.h>
#include <string.h>

#include "cm_config.h"
#include "cm_log.h"
#include "cm_token.h"

static struct chat_config cfg;

/* clang-format off */
static const struct cm_cfg_entry table[] = {
    {"CHAT_LISTEN_ADDR", CM_CFG_STR, "127.0.0.1", 1, 255, &cfg.listen_addr,
     "address to listen on"},
    {"CHAT_PORT", CM_CFG_INT, "8082", 1, 65535, &cfg.port, "TCP port for /ws (the only path)"},
    {"CHAT_ADMIN_ADDR", CM_CFG_STR, "127.0.0.1", 1, 255, &cfg.admin_addr,
     "address of the internal listener of /healthz and /metrics"},
    {"CHAT_ADMIN_PORT", CM_CFG_INT, "8083", 1, 65535, &cfg.admin_port,
     "TCP port for /healthz and /metrics (not CHAT_PORT)"},
    {"CHAT_ALLOWED_ORIGINS", CM_CFG_STR, "", 0, CHAT_ALLOWED_ORIGINS_MAX, &cfg.allowed_origins,
     "comma-separated origins allowed to use the cookie; empty: the request's own Host"},
    {"JWT_SECRET", CM_CFG_SECRET, NULL, CM_TOKEN_SECRET_MIN, CM_TOKEN_SECRET_MAX, &cfg.jwt_secret,
     "HS256 secret shared with the website"},
    {"LOG_LEVEL", CM_CFG_STR, "info", 1, 16, &cfg.log_level, "debug, info, warn or error"},
    {"CHAT_MAX_TEXT_CHARS", CM_CFG_INT, "4000", 1, 16000, &cfg.max_text_chars,
     "longest message text in characters (code points)"},
    {"CHAT_MAX_CLIENT_ID", CM_CFG_INT, "64", 1, 256, &cfg.max_client_id,
     "longest client_id in bytes"},
    {"CHAT_MAX_MESSAGE_BYTES", CM_CFG_INT, "65536", 1024, 1048576, &cfg.max_message_bytes,
     "largest WebSocket message (after reassembly); larger closes with 1009"},
    {"CHAT_RX_BUFFER", CM_CFG_INT, "1024", 128, 65536, &cfg.rx_buffer,
     "per-connection receive chunk (lws rx_buffer_size)"},
    {"CHAT_RATE_PER_SEC", CM_CFG_INT, "5", 1, 100000, &cfg.rate_per_sec,
     "client frames per second (token bucket refill)"},
    {"CHAT_RATE_BURST", CM_CFG_INT, "20", 1, 100000, &cfg.rate_burst,
     "client frames in a burst (token bucket size)"},
    {"CHAT_RATE_STRIKES", CM_CFG_INT, "10", 1, 255, &cfg.rate_strikes,
     "rate-limited frames in a row before close 1008"},
    {"CHAT_RING_SIZE", CM_CFG_INT, "512", 8, 65536, &cfg.ring_size,
     "frames kept per room: a client lagging more is disconnected"},
    {"CHAT_MAX_PENDING_REPLIES", CM_CFG_INT, "16", 2, 1024, &cfg.max_private,
     "queued welcome/error frames per connection before close 1008"},
    {"CHAT_PING_INTERVAL", CM_CFG_INT, "30", 1, 3600, &cfg.ping_interval,
     "seconds without input from a client before the server pings it"},
    {"CHAT_IDLE_TIMEOUT", CM_CFG_INT, "75", 2, 7200, &cfg.idle_timeout,
     "seconds without input (frames or pongs) before the connection is dropped"},
    {"CHAT_MAX_CONNECTIONS", CM_CFG_INT, "10000", 1, 1000000, &cfg.max_connections,
     "WebSocket connections; beyond it handshakes get 503"},
    {"CHAT_MAX_HEADER_BYTES", CM_CFG_INT, "8192", 5120, 65535, &cfg.max_header_bytes,
     "request header bytes accepted before authentication"},
    {"CHAT_MAX_PENDING_HANDSHAKES", CM_CFG_INT, "64", 1, 4096, &cfg.max_pending_handshakes,
     "handshakes parsed at once (others wait)"},
    {"CHAT_HANDSHAKE_TIMEOUT", CM_CFG_INT, "10", 1, 300, &cfg.handshake_timeout,
     "seconds to send a complete handshake"},
    {"CHAT_SHUTDOWN_GRACE_MS", CM_CFG_INT, "3000", 0, 60000, &cfg.shutdown_grace_ms,
     "on SIGTERM, time for clients to get their 1001 close"},
    {"CHAT_REASSEMBLY_BUDGET", CM_CFG_INT, "33554432", 1024, 1073741824, &cfg.reassembly_budget,
     "bytes of partial messages held for all clients; beyond it close 1013"},
    {"CHAT_REASSEMBLY_PER_USER", CM_CFG_INT, "1048576", 1024, 1073741824, &cfg.reassembly_per_user,
     "bytes of partial messages one user's connections may hold; beyond it close 1008"},
    {"CHAT_PARTIAL_TIMEOUT_MS", CM_CFG_INT, "10000", 100, 600000, &cfg.partial_timeout_ms,
     "time to complete a message begun in several pieces; else close 1008"},
    {"CHAT_MAX_CONNS_PER_USER", CM_CFG_INT, "16", 1, 100000, &cfg.max_conns_per_user,
     "connections of one user (all rooms); beyond it the handshake is refused"},
    {"CHAT_MAX_CONNS_PER_USER_ROOM", CM_CFG_INT, "8", 1, 100000, &cfg.max_conns_per_user_room,
     "connections of one user to one room; beyond it the handshake is refused"},
    {"CHAT_TYPING_PER_SEC", CM_CFG_INT, "2", 1, 1000, &cfg.typing_per_sec,
     "typing frames per second per user (own bucket; excess dropped)"},
    {"CHAT_TYPING_BURST", CM_CFG_INT, "5", 1, 1000, &cfg.typing_burst,
     "typing frames in a burst per user"},
    {"CHAT_CONTROL_PER_SEC", CM_CFG_INT, "5", 1, 100000, &cfg.control_per_sec,
     "ping/pong/close frames per second per user; beyond the burst close 1008"},
    {"CHAT_CONTROL_BURST", CM_CFG_INT, "20", 1, 100000, &cfg.control_burst,
     "ping/pong/close frames in a burst per user"},
    {"CHAT_SNDBUF", CM_CFG_INT, "65536", 0, 16777216, &cfg.sndbuf,
     "SO_SNDBUF of each WebSocket in bytes (kernel memory an unread one pins); 0 = kernel's"},
    {"CHAT_SLOW_GRACE_MS", CM_CFG_INT, "10000", 100, 600000, &cfg.slow_grace_ms,
     "a client whose socket takes no data for this long, with frames waiting, is dropped"},
    {"CHAT_ROOM_BACKLOG_FRAMES", CM_CFG_INT, "16384", 8, 1048576, &cfg.backlog_frames,
     "frames a room's ring may grow to in a burst; a client lagging more is dropped"},
    {"CHAT_ROOM_BACKLOG_BYTES", CM_CFG_INT, "67108864", 65536, 4294967296LL, &cfg.backlog_bytes,
     "bytes a room's ring may grow to in a burst"},
    /* history: Redis (history.c, redis.c) */
    {"CHAT_REDIS_HOST", CM_CFG_STR, "127.0.0.1", 1, 255, &cfg.redis_host,
     "Redis host (name or address)"},
    {"CHAT_REDIS_PORT", CM_CFG_INT, "6379", 1, 65535, &cfg.redis_port, "Redis TCP port"},
    {"CHAT_REDIS_PASSWORD", CM_CFG_SECRET, "", 0, 512, &cfg.redis_password,
     "Redis AUTH password (empty: no AUTH)"},
    {"CHAT_REDIS_TIMEOUT_MS", CM_CFG_INT, "2000", 50, 60000, &cfg.redis_timeout_ms,
     "ms a Redis command or connect may take before the connection is dropped and reopened"},
    {"CHAT_REDIS_MAX_PENDING", CM_CFG_INT, "10000", 10, 1000000, &cfg.redis_max_pending,
     "messages sent to Redis and not yet answered; beyond it senders get unavailable"},
    {"CHAT_STREAM_LEN", CM_CFG_INT, "10000", 100, 10000000, &cfg.stream_len,
     "messages per room kept in Redis (older ones are read from the archive)"},
    {"CHAT_IDEMPOTENCY_TTL", CM_CFG_INT, "900", 600, 604800, &cfg.idempotency_ttl,
     "seconds a client_id is remembered (a retry within it is not a second message)"},
    {"CHAT_OUTBOX_MAX", CM_CFG_INT, "1000000", 1000, 100000000, &cfg.outbox_max,
     "messages waiting for the archive before senders get unavailable"},
    {"CHAT_PRESENCE_HEARTBEAT_MS", CM_CFG_INT, "1000", 100, 10000, &cfg.presence_heartbeat_ms,
     "ms between a replica's presence heartbeats (and its checks for dead replicas)"},
    {"CHAT_PRESENCE_TTL_MS", CM_CFG_INT, "10000", 300, 60000, &cfg.presence_ttl_ms,
     "ms after its last heartbeat a replica counts as dead and its users leave"},
    {"CHAT_MONGO_URI", CM_CFG_SECRET, "mongodb://127.0.0.1:27017/?appname=parley-chat", 10, 4096,
     &cfg.mongo_uri, "MongoDB connection string (may hold credentials)"},
    {"CHAT_MONGO_DB", CM_CFG_STR, "parley", 1, 63, &cfg.mongo_db, "MongoDB database"},
    {"CHAT_ARCHIVE_BATCH", CM_CFG_INT, "500", 1, 10000, &cfg.archive_batch,
     "outbox entries archived per MongoDB write"},
    {"CHAT_ARCHIVE_LINGER_MS", CM_CFG_INT, "100", 0, 5000, &cfg.archive_linger_ms,
     "ms the archive writer waits after a batch smaller than CHAT_ARCHIVE_BATCH, so that the "
     "next write carries more"},
    {"CHAT_ARCHIVE_CLAIM_MS", CM_CFG_INT, "30000", 1000, 3600000, &cfg.archive_claim_ms,
     "ms an outbox entry stays unacked before another archiver takes it over"},
    {"CHAT_HISTORY_QUEUE", CM_CFG_INT, "1024", 1, 1000000, &cfg.history_queue,
     "archive (MongoDB) history queries waiting; beyond it `unavailable`"},
    /* moderation (moderation.c) */
    {"CHAT_MODERATION_BLOCK_MS", CM_CFG_INT, "1000", 10, 30000, &cfg.mod_block_ms,
     "ms one XREAD of the moderation stream waits for events (then it is sent again)"},
    {"CHAT_MODERATION_BATCH", CM_CFG_INT, "500", 1, 10000, &cfg.mod_batch,
     "moderation events read per XREAD"},
    {"CHAT_MODERATION_MAX_ENTRIES", CM_CFG_INT, "200000", 100, 10000000, &cfg.mod_max_entries,
     "revocations kept in memory; beyond it older tokens are refused (1013)"},
};
/* clang-format on */
#define NTABLE (sizeof table / sizeof table[0])

int chat_config_load(struct chat_config *out, char *err, size_t errlen)
{
    if (cm_config_load(table, NTABLE, err, errlen) < 0)
        return -1;
    if (cm_log_level_parse(cfg.log_level) < 0) {
        snprintf(err, errlen, "LOG_LEVEL: '%s' is not one of debug, info, warn, error",
                 cfg.log_level);
        return -1;
    }
    if (cfg.idle_timeout <= cfg.ping_interval) {
        snprintf(err, errlen,
                 "CHAT_IDLE_TIMEOUT (%lld) must be greater than CHAT_PING_INTERVAL "
                 "(%lld)",
                 cfg.idle_timeout, cfg.ping_interval);
        return -1;
    }
    if (cfg.max_message_bytes < cfg.max_text_chars * 4 + 1024) {
        snprintf(err, errlen,
                 "CHAT_MAX_MESSAGE_BYTES (%lld) cannot hold CHAT_MAX_TEXT_CHARS "
                 "(%lld) characters",
                 cfg.max_message_bytes, cfg.max_text_chars);
        return -1;
    }
    if (cfg.reassembly_budget < cfg.max_message_bytes) {
        snprintf(err, errlen,
                 "CHAT_REASSEMBLY_BUDGET (%lld) cannot hold one CHAT_MAX_MESSAGE_BYTES "
                 "(%lld) message",
                 cfg.reassembly_budget, cfg.max_message_bytes);
        return -1;
    }
    if (cfg.admin_port == cfg.port) {
        /* lws picks a vhost by port and Host header: on one port, a Host naming the admin
         * vhost would reach /metrics from the public side */
        snprintf(err, errlen, "CHAT_ADMIN_PORT (%lld) must differ from CHAT_PORT", cfg.port);
        return -1;
    }
    if (cfg.allowed_origins[0] &&
        !chat_origin_list_valid(cfg.allowed_origins, strlen(cfg.allowed_origins))) {
        snprintf(err, errlen,
                 "CHAT_ALLOWED_ORIGINS: '%.200s' is not a comma-separated list of origins "
                 "such as https://chat.example or http://127.0.0.1:8080 (lowercase, no path)",
                 cfg.allowed_origins);
        return -1;
    }
    /* a share above CHAT_REASSEMBLY_BUDGET just means the global budget binds first */
    if (cfg.reassembly_per_user < cfg.max_message_bytes) {
        snprintf(err, errlen,
                 "CHAT_REASSEMBLY_PER_USER (%lld) cannot hold one CHAT_MAX_MESSAGE_BYTES (%lld) "
                 "message",
                 cfg.reassembly_per_user, cfg.max_message_bytes);
        return -1;
    }
    if (cfg.max_conns_per_user_room > cfg.max_conns_per_user) {
        snprintf(err, errlen,
                 "CHAT_MAX_CONNS_PER_USER_ROOM (%lld) exceeds CHAT_MAX_CONNS_PER_USER (%lld)",
                 cfg.max_conns_per_user_room, cfg.max_conns_per_user);
        return -1;
    }
    if (cfg.backlog_frames < cfg.ring_size) {
        snprintf(err, errlen, "CHAT_ROOM_BACKLOG_FRAMES (%lld) is below CHAT_RING_SIZE (%lld)",
                 cfg.backlog_frames, cfg.ring_size);
        return -1;
    }
    if (cfg.backlog_bytes < cfg.max_message_bytes) {
        snprintf(err, errlen,
                 "CHAT_ROOM_BACKLOG_BYTES (%lld) cannot hold one CHAT_MAX_MESSAGE_BYTES (%lld) "
                 "message",
                 cfg.backlog_bytes, cfg.max_message_bytes);
        return -1;
    }
    if (cfg.presence_ttl_ms < 2 * cfg.presence_heartbeat_ms) {
        /* one late heartbeat must not declare a live replica dead */
        snprintf(err, errlen,
                 "CHAT_PRESENCE_TTL_MS (%lld) must be at least twice CHAT_PRESENCE_HEARTBEAT_MS "
                 "(%lld)",
                 cfg.presence_ttl_ms, cfg.presence_heartbeat_ms);
        return -1;
    }
    /* a database name is a path component on the server: keep to plain characters */
    for (const char *p = cfg.mongo_db; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-')) {
            snprintf(err, errlen, "CHAT_MONGO_DB: only letters, digits, '_' and '-' are allowed");
            return -1;
        }
    *out = cfg;
    return 0;
}

void chat_config_log(void)
{
    cm_config_log(table, NTABLE);
}

void chat_config_free(void)
{
    cm_config_free(table, NTABLE);
}
