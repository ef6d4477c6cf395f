/* Schema migrations: db/migrations/NNN_name.sql, compiled in, applied in order at start-up.
 * Each one runs in its own transaction together with its row in schema_migrations, so it is
 * either fully applied and recorded or not at all. A session-level advisory lock serialises
 * replicas that start together: the second waits, then finds everything applied. */
#include "db.h"

#include "cm_log.h"
#include "embedded.h"

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
    if (!exec_ok(c, "SELECT pg_advisory_unlock(" WEB_MIGRATE_LOCK_KEY ")", 0, NULL, NULL))
        rc = -1;
    return rc;
}
