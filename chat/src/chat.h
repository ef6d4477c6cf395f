/* Shared types of the chat daemon: configuration, the server state, one connection, one
 * encoded frame. Each concern lives in its own file (config.c, http.c, conn.c, room.c,
 * ring.c, ratelimit.c, protocol.c, rawguard.c); this header only declares what they share. */
#ifndef CHAT_H
#define CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "cm_token.h"
#include "inbox.h"
#include "index.h"
#include "protocol.h"
#include "ratelimit.h"

/* Effective configuration (config.c fills it from the environment, every entry bounded). */
struct chat_config {
    char *listen_addr;
    long long port;
    char *jwt_secret;
    char *log_level;
    long long max_text_chars;          /* CHAT_MAX_TEXT_CHARS: code points per message */
    long long max_client_id;           /* CHAT_MAX_CLIENT_ID: bytes of client_id */
    long long max_message_bytes;       /* CHAT_MAX_MESSAGE_BYTES: reassembled ws message cap */
    long long rx_buffer;               /* CHAT_RX_BUFFER: lws per-connection rx chunk size */
    long long rate_per_sec;            /* CHAT_RATE_PER_SEC: token bucket refill */
    long long rate_burst;              /* CHAT_RATE_BURST: token bucket size */
    long long rate_strikes;            /* CHAT_RATE_STRIKES: violations in a row before 1008 */
    long long ring_size;               /* CHAT_RING_SIZE: frames kept per room = max lag */
    long long max_private;             /* CHAT_MAX_PENDING_REPLIES: queued welcome/error frames */
    long long ping_interval;           /* CHAT_PING_INTERVAL: s without input before a ping */
    long long idle_timeout;            /* CHAT_IDLE_TIMEOUT: s without input before hangup */
    long long max_connections;         /* CHAT_MAX_CONNECTIONS: beyond it, handshakes get 503 */
    long long max_header_bytes;        /* CHAT_MAX_HEADER_BYTES: pre-auth request header cap */
    long long max_pending_handshakes;  /* CHAT_MAX_PENDING_HANDSHAKES: concurrent header sets */
    long long handshake_timeout;       /* CHAT_HANDSHAKE_TIMEOUT: s to finish the HTTP request */
    long long shutdown_grace_ms;       /* CHAT_SHUTDOWN_GRACE_MS: flush time on SIGTERM */
    long long reassembly_budget;       /* CHAT_REASSEMBLY_BUDGET: bytes of all rx buffers */
    long long reassembly_per_user;     /* CHAT_REASSEMBLY_PER_USER: one user's share of it */
    long long partial_timeout_ms;      /* CHAT_PARTIAL_TIMEOUT_MS: to complete a message */
    long long max_conns_per_user;      /* CHAT_MAX_CONNS_PER_USER */
    long long max_conns_per_user_room; /* CHAT_MAX_CONNS_PER_USER_ROOM */
    long long typing_per_sec;          /* CHAT_TYPING_PER_SEC: typing bucket refill (per user) */
    long long typing_burst;            /* CHAT_TYPING_BURST */
    long long control_per_sec;         /* CHAT_CONTROL_PER_SEC: ping/pong/close (per user) */
    long long control_burst;           /* CHAT_CONTROL_BURST */
    long long sndbuf;                  /* CHAT_SNDBUF: SO_SNDBUF of a WebSocket, 0 = kernel's */
    long long slow_grace_ms;           /* CHAT_SLOW_GRACE_MS: unwritable this long = slow */
    long long backlog_frames;          /* CHAT_ROOM_BACKLOG_FRAMES: ring's hard cap */
    long long backlog_bytes;           /* CHAT_ROOM_BACKLOG_BYTES: ring's hard cap in bytes */
    char *allowed_origins;             /* CHAT_ALLOWED_ORIGINS: cookie handshakes; "" = Host */
    char *admin_addr;                  /* CHAT_ADMIN_ADDR: listener of /healthz, /metrics */
    long long admin_port;              /* CHAT_ADMIN_PORT */
    /* history (history.c, redis.c) */
    char *redis_host;            /* CHAT_REDIS_HOST */
    long long redis_port;        /* CHAT_REDIS_PORT */
    char *redis_password;        /* CHAT_REDIS_PASSWORD(_FILE), "" = none */
    long long redis_timeout_ms;  /* CHAT_REDIS_TIMEOUT_MS: per command and connect */
    long long redis_max_pending; /* CHAT_REDIS_MAX_PENDING: publishes in flight */
    long long stream_len;        /* CHAT_STREAM_LEN: messages per room kept in Redis */
    long long idempotency_ttl;   /* CHAT_IDEMPOTENCY_TTL: s a client_id is remembered */
    long long outbox_max;        /* CHAT_OUTBOX_MAX: unarchived messages before unavailable */
    /* presence across replicas (presence.c) */
    long long presence_heartbeat_ms; /* CHAT_PRESENCE_HEARTBEAT_MS */
    long long presence_ttl_ms;       /* CHAT_PRESENCE_TTL_MS: a silent replica is dead after it */
    /* the archive (archive.c: MongoDB, its own Redis connections) */
    char *mongo_uri;             /* CHAT_MONGO_URI (secret: it may hold credentials) */
    char *mongo_db;              /* CHAT_MONGO_DB */
    long long archive_batch;     /* CHAT_ARCHIVE_BATCH: outbox entries per MongoDB write */
    long long archive_linger_ms; /* CHAT_ARCHIVE_LINGER_MS: wait after a short batch */
    long long archive_claim_ms;  /* CHAT_ARCHIVE_CLAIM_MS: idle time before XAUTOCLAIM */
    long long history_queue;     /* CHAT_HISTORY_QUEUE: archive queries waiting */
    /* moderation (moderation.c: its own Redis client) */
    long long mod_block_ms;    /* CHAT_MODERATION_BLOCK_MS: XREAD BLOCK of the event stream */
    long long mod_batch;       /* CHAT_MODERATION_BATCH: events read per XREAD */
    long long mod_max_entries; /* CHAT_MODERATION_MAX_ENTRIES: revocations kept in memory */
};

int chat_config_load(struct chat_config *cfg, char *err, size_t errlen);
void chat_config_log(void);
void chat_config_free(void);

/* One encoded server frame, encoded once and shared by every recipient (the header of an
 * unmasked server frame is the same for all of them). Usually it is copied with its header
 * into a connection's batch (conn.c); a frame too big for a batch is written directly, and
 * its LWS_PRE bytes of headroom take the header lws_write puts before the payload. */
enum chat_frame_kind { CHAT_FRAME_EVENT = 0, CHAT_FRAME_MESSAGE = 1 };

struct chat_frame {
    uint64_t seq;            /* ring sequence number (broadcast frames) */
    uint64_t exclude_conn;   /* connection id that must not get it (typing), 0 = none */
    struct chat_frame *next; /* private queue link */
    size_t len;              /* payload bytes */
    uint8_t kind;
    unsigned char pre[LWS_PRE];
    unsigned char payload[];
};

struct chat_room;
struct chat_member;
struct chat_history;

/* Bytes of frames written to one connection in one syscall (conn.c batches pending frames;
 * also lws's per-write limit, the protocol's tx_packet_size). */
#define CHAT_TX_BATCH_BYTES 16384

/* Per-connection state: lws allocates it zeroed (per_session_data_size) for every wsi of
 * the protocol, including plain HTTP ones, and it stays valid until LWS_CALLBACK_WSI_DESTROY. */
struct chat_conn {
    struct lws *wsi;
    struct chat_room *room;
    struct chat_member *member;
    struct chat_conn *rprev, *rnext; /* the room's connection list */
    struct chat_conn *idnext;        /* the index's id bucket chain */
    struct chat_user *user;          /* the index's user of this connection */
    struct chat_conn *uprev, *unext; /* that user's connection list */
    uint64_t id;
    uint64_t next_seq; /* next ring frame to send: this connection's tail */
    struct chat_frame *priv_head, *priv_tail;
    uint32_t npriv;
    unsigned char *rx; /* reassembly buffer, only while a fragmented message arrives */
    size_t rx_len, rx_cap;
    char *ident;     /* "uid\0email\0name\0room\0" of the verified token (chat_conn_set_identity) */
    const char *why; /* close reason for the log (static string) */
    int fd;          /* socket, noted at ESTABLISHED (for rawguard) */
    uint16_t close_code; /* close to send on the next WRITEABLE */
    uint16_t peer_code;
    uint8_t strikes;
    bool authed, established, culled, counted, closing;
    bool refused;        /* over a per-user budget at ESTABLISHED: only a 1008 close follows */
    int64_t rx_since_ms; /* when the partial message in rx began (CHAT_PARTIAL_TIMEOUT_MS) */
    int64_t wait_ms;     /* since when it has had frames to write and no WRITEABLE, 0 = not */
    /* liveness (see chat_conn_sweep): rx_seen is set by the recv() interposer (rawguard.c)
     * whenever bytes arrive; the sweep folds it into last_rx_ms */
    bool rx_seen;
    bool want_ping;     /* write a ping at the next WRITEABLE */
    int64_t last_rx_ms; /* monotonic ms of the last input seen by the sweep */
    int64_t ping_ms;    /* when the last unanswered ping was asked for, 0 = none */
    /* history (history.c) */
    int64_t rid;              /* the token's room id */
    char uid[CM_UID_MAX + 1]; /* the token's public user id */
    uint64_t since;           /* handshake since=S (has_since) */
    uint64_t last_seq;        /* welcome.last_seq */
    bool has_since;
    bool held;             /* nothing is written until welcome + history are queued */
    bool waiting;          /* held until the room knows its last seq */
    uint8_t hist_inflight; /* history reads in flight */
    /* moderation (moderation.c): what a revocation is matched against */
    int64_t iat;              /* the token's iat, Unix s */
    char sid[CM_SID_MAX + 1]; /* the token's sid claim, "" = none */
};

#define CHAT_REJ_COUNT 20 /* entries of enum chat_reject */
struct chat_counters {
    uint64_t messages_received, messages_delivered, frames_sent, rate_limited, culled,
        protocol_errors, bad_requests, handshakes_accepted, framing_violations, idle_dropped,
        pings_sent, reassembly_refused, user_conns_refused, typing_dropped, control_limited,
        partial_timeouts;
    uint64_t closed_by_lws[16];        /* closes lws made itself, by code (chat_conn_lws_close) */
    uint64_t rejected[CHAT_REJ_COUNT]; /* by enum chat_reject */
};

enum chat_reject {
    CHAT_REJ_MISSING = 0,
    CHAT_REJ_TOO_LONG,
    CHAT_REJ_MALFORMED,
    CHAT_REJ_BAD_ALG,
    CHAT_REJ_BAD_SIGNATURE,
    CHAT_REJ_EXPIRED,
    CHAT_REJ_NOT_YET_VALID,
    CHAT_REJ_BAD_ISSUER,
    CHAT_REJ_BAD_AUDIENCE,
    CHAT_REJ_BAD_CLAIM,
    CHAT_REJ_OVER_CAPACITY,
    CHAT_REJ_SHUTTING_DOWN,
    CHAT_REJ_TOKEN_IN_URL, /* access_token in the query (400) */
    CHAT_REJ_BAD_QUERY,    /* a query argument other than room=NAME once (400) */
    CHAT_REJ_BAD_COOKIE,   /* the room's cookie twice with different values (400) */
    CHAT_REJ_BAD_ORIGIN,   /* cookie without an allowed Origin (403) */
    CHAT_REJ_WRONG_ROOM,   /* token's room is not the ?room= argument (403) */
    CHAT_REJ_BAD_UPGRADE,  /* Upgrade other than websocket, e.g. h2c (403) */
    CHAT_REJ_USER_LIMIT,   /* the user's connections (in all, or to this room) at their cap (429) */
    CHAT_REJ_STORE_DOWN,   /* Redis not connected: messages could not be stored (503) */
};
_Static_assert(CHAT_REJ_STORE_DOWN + 1 == CHAT_REJ_COUNT, "CHAT_REJ_COUNT counts chat_reject");

struct chat_server {
    const struct chat_config *cfg;
    struct lws_context *ctx;
    struct chat_rooms *rooms;
    struct chat_history *hist;  /* history.c: Redis, the archive */
    struct chat_mod *mod;       /* moderation.c: revocations, the moderation stream */
    struct chat_presence *pres; /* presence.c: members across replicas (NULL: local only) */
    struct chat_counters n;
    struct chat_index index; /* established connections by id and by user */
    struct chat_inbox inbox; /* events from other threads (chat_conn_drain_inbox) */
    uint64_t next_conn_id;
    size_t nconns;                /* established WebSocket connections */
    size_t rx_bytes;              /* reassembly buffer bytes held by all connections (budgeted) */
    lws_sorted_usec_list_t sweep; /* the one ping / idle timer of all connections */
    bool stopping;
};

/* http.c: the protocol callback (HTTP endpoints, handshake auth, then hands ws events to
 * conn.c). */
int chat_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len);
/* Creates the admin listener (CHAT_ADMIN_ADDR:CHAT_ADMIN_PORT, its own lws vhost): GET
 * /healthz and /metrics only, never an upgrade; the public vhost serves only /ws. pub is
 * the public vhost's creation info (copied, then port, address and protocols replaced).
 * Returns NULL if it cannot listen. */
struct lws_vhost *chat_http_admin_listen(struct lws_context *ctx,
                                         const struct lws_context_creation_info *pub,
                                         const struct chat_config *cfg);

/* conn.c: WebSocket connection life cycle. Each returns what the lws callback must return. */
int chat_conn_established(struct chat_server *srv, struct chat_conn *c, struct lws *wsi);
int chat_conn_receive(struct chat_server *srv, struct chat_conn *c, const void *in, size_t len);
int chat_conn_writeable(struct chat_server *srv, struct chat_conn *c);
void chat_conn_teardown(struct chat_server *srv, struct chat_conn *c);
/* Keeps what the upgrade needs from the verified token (before ESTABLISHED; lws frees
 * the header table after the upgrade). */
struct cm_token_claims;
void chat_conn_set_identity(struct chat_conn *c, const struct cm_token_claims *cl);
/* Service thread, on LWS_CALLBACK_EVENT_WAIT_CANCELLED: dispatches every event posted to
 * srv->inbox (frames to rooms, closes of connections by id). */
void chat_conn_drain_inbox(struct chat_server *srv);
/* Per-user connection budgets (CHAT_MAX_CONNS_PER_USER, CHAT_MAX_CONNS_PER_USER_ROOM):
 * whether one more connection of user uid to room may be established now. For the upgrade
 * filter, right after the token is verified (answer a refusal with 429); ESTABLISHED
 * checks again and closes 1008 "too many connections". O(connections of the user). */
enum chat_admit { CHAT_ADMIT_OK = 0, CHAT_ADMIT_USER_FULL = 1, CHAT_ADMIT_ROOM_FULL = 2 };
enum chat_admit chat_user_admit(struct chat_server *srv, const char *uid, const char *room);
/* rawguard.c, from the recv() interposer: n control frames (ping, pong, close) started on
 * the established connection conn; over the user's control budget it is closed 1008. */
void chat_conn_on_control_frames(void *conn, unsigned n);
/* Appends the connection metrics of conn.c (Prometheus text) for GET /metrics. */
struct cm_buf;
void chat_conn_metrics(const struct chat_server *srv, struct cm_buf *b);
/* Asks every connection to close with 1001 (SIGTERM). */
void chat_conn_shutdown_all(struct chat_server *srv);
/* Starts / stops the liveness sweep: one lws timer for all connections (not lws's
 * per-connection validity timers, whose sorted insertion is O(n) each at scale). */
void chat_conn_sweep_start(struct chat_server *srv);
void chat_conn_sweep_stop(struct chat_server *srv);

/* conn.c, for history.c: queue a private frame (-1 when the queue is full: f is freed), close
 * with a code from the next WRITEABLE, queue welcome + history before everything else and
 * stop holding c, fan a frame out to a room (takes ownership), build c's welcome. */
int chat_conn_send_private(struct chat_server *srv, struct chat_conn *c, struct chat_frame *f);
void chat_conn_close(struct chat_server *srv, struct chat_conn *c, enum lws_close_status code,
                     const char *why);
void chat_conn_release(struct chat_server *srv, struct chat_conn *c, struct chat_frame *welcome,
                       struct chat_frame *history);
void chat_room_broadcast(struct chat_server *srv, struct chat_room *room, struct chat_frame *f);
struct chat_frame *chat_conn_welcome(const struct chat_conn *c);

/* Allocates a frame holding a copy of payload. Caller owns it (free()). */
struct chat_frame *chat_frame_new(const void *payload, size_t len, enum chat_frame_kind kind);

#endif
