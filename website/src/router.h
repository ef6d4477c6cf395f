/* Maps (method, path) to a handler; 404 for unknown paths, 405 with Allow for a known path
 * with another method. HEAD is served wherever GET is. */
#ifndef WEB_ROUTER_H
#define WEB_ROUTER_H

#include "http.h"

typedef void (*web_handler)(struct web_req *r);

void web_route(struct web_req *r);

/* True for the JSON API's paths (/api/..., /healthz): their errors are JSON. */
bool web_is_api_path(const char *path);

/* Handlers (users.c, rooms.c, admin.c, api.c, static.c). */
void web_h_home(struct web_req *r);
void web_h_register_get(struct web_req *r);
void web_h_register_post(struct web_req *r);
void web_h_login_get(struct web_req *r);
void web_h_login_post(struct web_req *r);
void web_h_logout_post(struct web_req *r);
void web_h_rooms_get(struct web_req *r);
void web_h_rooms_post(struct web_req *r);
void web_h_room_get(struct web_req *r);
void web_h_room_delete_post(struct web_req *r);
void web_h_admin_get(struct web_req *r);
void web_h_admin_ban_post(struct web_req *r);
void web_h_admin_unban_post(struct web_req *r);
void web_h_admin_promote_post(struct web_req *r);
void web_h_admin_room_delete_post(struct web_req *r);
void web_h_api_token_post(struct web_req *r);
void web_h_api_rooms_get(struct web_req *r);
void web_h_healthz_get(struct web_req *r);
void web_h_static_get(struct web_req *r);

#endif
