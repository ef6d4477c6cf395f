#include "config.h"

#include "cm_config.h"
#include "cm_log.h"
#include "cm_token.h"
#include "validate.h"

#include <stdio.h>
#include <string.h>

#ifndef WEB_DEFAULT_STATIC_DIR
#define WEB_DEFAULT_STATIC_DIR "website/static"
#endif

struct web_config web_cfg;

/* name, type, default (NULL = required), min, max, target, help */
static const struct cm_cfg_entry table[] = {
    {"LOG_LEVEL", CM_CFG_STR, "info", 4, 5, &web_cfg.log_level, "debug|info|warn|error"},
    {"JWT_SECRET", CM_CFG_SECRET, NULL, CM_TOKEN_SECRET_MIN, CM_TOKEN_SECRET_MAX,
     &web_cfg.jwt_secret, "shared HS256 secret for chat tokens, at least 32 bytes"},
    {"WEB_LISTEN_ADDR", CM_CFG_STR, "127.0.0.1", 1, 64, &web_cfg.listen_addr,
     "IPv4 address to listen on"},
    {"WEB_PORT", CM_CFG_INT, "8081", 1, 65535, &web_cfg.port, "TCP port"},
    {"WEB_THREADS", CM_CFG_INT, "4", 0, 64, &web_cfg.threads,
     "polling threads (epoll); 0 = one thread per connection"},
    {"WEB_MAX_CONNECTIONS", CM_CFG_INT, "1000", 1, 15000, &web_cfg.max_connections,
     "simultaneous connections"},
    {"WEB_CONN_TIMEOUT", CM_CFG_INT, "30", 1, 3600, &web_cfg.conn_timeout,
     "seconds of inactivity before a connection is closed"},
    {"WEB_CONN_MEMORY", CM_CFG_INT, "65536", 16384, 1048576, &web_cfg.conn_memory,
     "bytes of header and buffer memory per connection"},
    {"WEB_MAX_BODY", CM_CFG_INT, "65536", 1024, 1048576, &web_cfg.max_body,
     "largest request body in bytes (413 beyond)"},
    {"DB_HOST", CM_CFG_STR, "127.0.0.1", 1, 255, &web_cfg.db_host, "PostgreSQL host"},
    {"DB_PORT", CM_CFG_INT, "5432", 1, 65535, &web_cfg.db_port, "PostgreSQL port"},
    {"DB_NAME", CM_CFG_STR, "parley", 1, 63, &web_cfg.db_name, "database name"},
    {"DB_USER", CM_CFG_STR, "parley", 1, 63, &web_cfg.db_user, "database login"},
    {"DB_PASSWORD", CM_CFG_SECRET, NULL, 1, 1024, &web_cfg.db_password, "database password"},
    {"DB_POOL_SIZE", CM_CFG_INT, "8", 1, 256, &web_cfg.db_pool_size, "database connections"},
    {"DB_CONNECT_TIMEOUT", CM_CFG_INT, "3", 1, 60, &web_cfg.db_connect_timeout,
     "seconds per connection attempt"},
    {"DB_ACQUIRE_TIMEOUT", CM_CFG_INT, "5000", 10, 60000, &web_cfg.db_acquire_timeout,
     "milliseconds a request waits for a free database connection"},
    {"DB_START_WAIT", CM_CFG_INT, "30", 0, 600, &web_cfg.db_start_wait,
     "seconds start-up waits for the database (then serves 503 until it answers)"},
    {"WEB_DB_TIMEOUT_MS", CM_CFG_INT, "5000", 100, 600000, &web_cfg.db_timeout_ms,
     "milliseconds one query may take: statement_timeout and lock_timeout on the server, and "
     "the website's own wait on the socket (a stopped server answers nothing); then 503"},
    {"WEB_DB_RETRY_MS", CM_CFG_INT, "1000", 0, 60000, &web_cfg.db_retry_ms,
     "after a query or connection timed out, milliseconds requests answer 503 at once "
     "instead of each waiting out its own deadline"},
    {"WEB_HASH_QUEUE", CM_CFG_INT, "64", 1, 100000, &web_cfg.hash_queue,
     "password hashes/verifications queued or running at once; more get 503"},
    {"WEB_HASH_TIMEOUT_MS", CM_CFG_INT, "5000", 100, 600000, &web_cfg.hash_timeout_ms,
     "milliseconds a password job may wait in the queue before it starts; then 503"},
    {"WEB_INVITE_TTL", CM_CFG_INT, "604800", 60, 2592000, &web_cfg.invite_ttl,
     "seconds an invite link to a room stays usable (single-use; revocable)"},
    {"WEB_ROOMS_PER_HOUR", CM_CFG_INT, "30", 1, 100000, &web_cfg.rooms_per_hour,
     "rooms one user may create in any hour (checked in the database); more get 429"},
    {"TOKEN_TTL", CM_CFG_INT, "60", 5, CM_TOKEN_TTL_MAX, &web_cfg.token_ttl,
     "chat token lifetime in seconds"},
    {"SESSION_TTL", CM_CFG_INT, "604800", 60, 31536000, &web_cfg.session_ttl,
     "session lifetime in seconds"},
    {"ADMIN_EMAIL", CM_CFG_STR, "", 0, CM_EMAIL_MAX, &web_cfg.admin_email,
     "first admin account, created at start-up if missing"},
    {"ADMIN_PASSWORD", CM_CFG_SECRET, "", 0, WEB_PASSWORD_MAX, &web_cfg.admin_password,
     "password of ADMIN_EMAIL"},
    {"STATIC_DIR", CM_CFG_STR, WEB_DEFAULT_STATIC_DIR, 1, 4096, &web_cfg.static_dir,
     "directory served under /static/"},
    {"COOKIE_SECURE", CM_CFG_INT, "0", 0, 1, &web_cfg.cookie_secure, "1: cookies only over HTTPS"},
    {"TRUST_PROXY", CM_CFG_INT, "0", 0, 1, &web_cfg.trust_proxy,
     "1: the client address is X-Real-IP (set by nginx)"},
    {"WEB_REDIS_HOST", CM_CFG_STR, "127.0.0.1", 1, 255, &web_cfg.redis_host,
     "Redis host (room deletions for the chat archive)"},
    {"WEB_REDIS_PORT", CM_CFG_INT, "6379", 1, 65535, &web_cfg.redis_port, "Redis port"},
    {"WEB_REDIS_PASSWORD", CM_CFG_SECRET, "", 0, 1024, &web_cfg.redis_password,
     "Redis AUTH password (empty: no AUTH)"},
    {"WEB_REDIS_TIMEOUT_MS", CM_CFG_INT, "2000", 100, 60000, &web_cfg.redis_timeout_ms,
     "Redis connect and command timeout in ms"},
    {"PWHASH_OPSLIMIT", CM_CFG_INT, "2", 1, 10, &web_cfg.pwhash_opslimit,
     "Argon2id passes (libsodium interactive = 2)"},
    {"PWHASH_MEMLIMIT_KIB", CM_CFG_INT, "65536", 8, 1048576, &web_cfg.pwhash_memlimit_kib,
     "Argon2id memory in KiB (libsodium interactive = 65536)"},
    {"PWHASH_CONCURRENCY", CM_CFG_INT, "2", 1, 64, &web_cfg.pwhash_concurrency,
     "threads of the password-hashing pool: hashes computed at once (bounds memory)"},
};

#define NTABLE (sizeof table / sizeof table[0])

int web_config_load(char *err, size_t errlen)
{
    if (cm_config_load(table, NTABLE, err, errlen) < 0)
        return -1;
    if (cm_log_level_parse(web_cfg.log_level) < 0) {
        snprintf(err, errlen, "LOG_LEVEL: '%s' is not one of debug, info, warn, error",
                 web_cfg.log_level);
        return -1;
    }
    size_t ael = strlen(web_cfg.admin_email), apl = strlen(web_cfg.admin_password);
    if (ael > 0 && apl == 0) {
        snprintf(err, errlen,
                 "ADMIN_EMAIL is set but ADMIN_PASSWORD (or ADMIN_PASSWORD_FILE) "
                 "is not");
        return -1;
    }
    if (ael == 0 && apl > 0) {
        snprintf(err, errlen, "ADMIN_PASSWORD is set but ADMIN_EMAIL is not");
        return -1;
    }
    if (ael > 0) {
        char norm[WEB_EMAIL_MAX + 1];
        const char *m = web_valid_email(web_cfg.admin_email, ael, norm);
        if (m) {
            snprintf(err, errlen, "ADMIN_EMAIL: %s", m);
            return -1;
        }
        memcpy(web_cfg.admin_email, norm, ael + 1);
        m = web_valid_password(web_cfg.admin_password, apl);
        if (m) {
            snprintf(err, errlen, "ADMIN_PASSWORD: %s", m);
            return -1;
        }
    }
    return 0;
}

void web_config_log(void)
{
    cm_config_log(table, NTABLE);
}

void web_config_free(void)
{
    cm_config_free(table, NTABLE);
}
