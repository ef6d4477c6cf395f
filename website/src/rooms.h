/* Room operations shared by the rooms pages and the admin page. */
#ifndef WEB_ROOMS_H
#define WEB_ROOMS_H

#include "req.h"

#define WEB_ROOMS_LIST_MAX 200 /* rows on one rooms page or API answer */

/* Deletes the room named by r->param after the form and CSRF check. Only its owner or an
 * admin (admin_only: only an admin) may; then 303 to `back`. */
void web_rooms_delete(struct web_req *r, bool admin_only, const char *back);

/* Escapes \, % and _ in [s, s+len) for a LIKE pattern; returns a malloc'd string. */
char *web_like_escape(const char *s, size_t len);

#endif
