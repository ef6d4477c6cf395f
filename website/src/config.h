/* The website daemon's configuration: one table of environment variables (config.c). */
#ifndef WEB_CONFIG_H
#define WEB_CONFIG_H

#include <stddef.h>

struct web_config {
    char *log_level;
    char *jwt_secret;
    char *listen_addr;
    long long port;
    long long threads; /* 0 = a thread per connection, N = N polling threads (epoll) */
    long long max_connections;
    long long conn_timeout; /* seconds of inactivity before MHD closes a connection */
    long long conn_memory;  /* bytes per connection for headers and buffers */
    long long max_body;     /* bytes; larger request bodies get 413 */
    char *db_host;
    long long db_port;
    char *db_name;
    char *db_user;
    char *db_password;
    long long db_pool_size;
    long long db_connect_timeout; /* seconds per connection attempt */
    long long db_acquire_timeout; /* milliseconds a request waits for a free connection */
    long long db_start_wait;      /* seconds start-up waits for the database before serving */
    long long db_timeout_ms;      /* milliseconds a query may take (server and client side) */
    long long db_retry_ms;        /* after a timeout, milliseconds requests fail fast (503) */
    long long hash_queue;         /* password jobs queued or running at once (503 beyond) */
    long long hash_timeout_ms;    /* milliseconds a password job may wait to start (503 after) */
    long long invite_ttl;         /* seconds an invite link stays usable */
    long long rooms_per_hour;     /* rooms one user may create per rolling hour (429 beyond) */
    long long token_ttl;
    long long session_ttl;
    char *admin_email;
    char *admin_password;
    char *static_dir;
    long long cookie_secure;
    long long trust_proxy;
    char *redis_host; /* WEB_REDIS_*: room deletions for the chat archive (events.c) */
    long long redis_port;
    char *redis_password;
    long long redis_timeout_ms;
    long long pwhash_opslimit;
    long long pwhash_memlimit_kib;
    long long pwhash_concurrency;
};

extern struct web_config web_cfg;

/* Loads web_cfg from the environment and checks the cross-field rules. On error writes a
 * message to err and returns -1. */
int web_config_load(char *err, size_t errlen);
void web_config_log(void);
void web_config_free(void);

#endif
