/* Schema migrations: db/migrations/NNN_name.sql, compiled in, applied in order at start-up.
 * Each one runs in its own transaction together with its row in schema_migrations, so it is
 * either fully applied and recorded or not at all. A session-level advisory lock serialises
 * replicas that start together: the second waits, then finds everything applied. The first
 * admin (ADMIN_EMAIL) is created here too, once the schema exists. */
#include "migrate.h"

#include "cm_log.h"
#include "config.h"
#include "embedded.h"
#include "password.h"

#include <stdbool.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEB_MIGRATE_LOCK_KEY "7242011" /* arbitrary, constant: "parley migrations" */

static bool exec_ok(PGconn *c, const char *sql, int n, const char *const *params, PGresult **out)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        cm_error("migrate: %s", PQresultErrorMessage(r));
        PQclear(r);
        return false;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return true;
}

/* Version number from "NNN_name.sql"; -1 if the name does not start with digits and '_'. */
static long version_of(const char *name)
{
    char *end;
    long v = strtol(name, &end, 10);
    return (end != name && *end == '_' && v > 0) ? v : -1;
}

static int apply_one(PGconn *c, const struct web_embedded *m, long v)
{
    char vs[24];
    snprintf(vs, sizeof vs, "%ld", v);
    const char *p[2] = {vs, m->name};
    PGresult *r;
    if (!exec_ok(c, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, p, &r))
        return -1;
    int done = PQntuples(r) > 0;
    PQclear(r);
    if (done)
        return 0;
    if (!exec_ok(c, "BEGIN", 0, NULL, NULL))
        return -1;
    /* The migration file is a fixed, multi-statement script from the repository (no input
     * of any kind reaches it), which the simple-query protocol (PQexec) is needed for. */
    PGresult *mr = PQexec(c, m->data);
    if (PQresultStatus(mr) != PGRES_COMMAND_OK && PQresultStatus(mr) != PGRES_TUPLES_OK) {
        cm_error("migrate: %s failed: %s", m->name, PQresultErrorMessage(mr));
        PQclear(mr);
        PQclear(PQexec(c, "ROLLBACK"));
        return -1;
    }
    PQclear(mr);
    if (!exec_ok(c, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, p, NULL) ||
        !exec_ok(c, "COMMIT", 0, NULL, NULL)) {
        PQclear(PQexec(c, "ROLLBACK"));
        return -1;
    }
    cm_info("migrate: applied %s", m->name);
    return 0;
}

int web_migrate(PGconn *c)
{
    /* A migration may build an index over a large table: the per-query deadline the pool
     * sets for requests (WEB_DB_TIMEOUT_MS) does not apply here. RESET at the end restores
     * the connection's own setting. */
    if (!exec_ok(c, "SET statement_timeout = 0", 0, NULL, NULL) ||
        !exec_ok(c, "SET lock_timeout = 0", 0, NULL, NULL))
        return -1;
    if (!exec_ok(c, "SELECT pg_advisory_lock(" WEB_MIGRATE_LOCK_KEY ")", 0, NULL, NULL))
        return -1;
    int rc = -1;
    if (!exec_ok(c,
                 "CREATE TABLE IF NOT EXISTS schema_migrations ("
                 " version integer PRIMARY KEY,"
                 " name text NOT NULL,"
                 " applied_at timestamptz NOT NULL DEFAULT now())",
                 0, NULL, NULL))
        goto out;
    long last = 0;
    for (const struct web_embedded *m = web_migrations; m->name; m++) {
        long v = version_of(m->name);
        if (v <= last) {
            cm_error("migrate: %s: bad or repeated version number", m->name);
            goto out;
        }
        last = v;
        if (apply_one(c, m, v) < 0)
            goto out;
    }
    rc = 0;
out:
    if (!exec_ok(c, "SELECT pg_advisory_unlock(" WEB_MIGRATE_LOCK_KEY ")", 0, NULL, NULL) ||
        !exec_ok(c, "RESET statement_timeout", 0, NULL, NULL) ||
        !exec_ok(c, "RESET lock_timeout", 0, NULL, NULL))
        rc = -1;
    return rc;
}

int web_admin_bootstrap(PGconn *c)
{
    if (!web_cfg.admin_email[0])
        return 0;
    const char *p1[1] = {web_cfg.admin_email};
    PGresult *res =
        PQexecParams(c, "SELECT 1 FROM users WHERE email = $1", 1, NULL, p1, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        cm_error("admin bootstrap: %s", PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }
    bool exists = PQntuples(res) > 0;
    PQclear(res);
    if (exists)
        return 0;
    char hash[WEB_HASH_MAX];
    if (web_password_hash(web_cfg.admin_password, strlen(web_cfg.admin_password), hash) < 0)
        return -1;
    const char *p[3] = {web_cfg.admin_email, "Admin", hash};
    res = PQexecParams(c,
                       "INSERT INTO users (email, name, password_hash, is_admin) "
                       "VALUES ($1, $2, $3, true) ON CONFLICT (email) DO NOTHING",
                       3, NULL, p, NULL, NULL, 0);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc < 0)
        cm_error("admin bootstrap: %s", PQresultErrorMessage(res));
    else if (strcmp(PQcmdTuples(res), "1") == 0) /* 0: another replica was first */
        cm_info("admin bootstrap: created admin account %s", web_cfg.admin_email);
    PQclear(res);
    return rc;
}
