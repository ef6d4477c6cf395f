/* Schema migrations and the first admin account, run once per process on the first database
 * connection (db.c). */
#ifndef WEB_MIGRATE_H
#define WEB_MIGRATE_H

#include <libpq-fe.h>

/* Applies db/migrations on conn under an advisory lock. 0 on success. */
int web_migrate(PGconn *conn);

/* Creates ADMIN_EMAIL if missing (called once after migrations). 0 on success. */
int web_admin_bootstrap(PGconn *conn);

#endif
