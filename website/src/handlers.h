/* The request handlers the router dispatches to (users.c, rooms.c, admin.c, api.c, static.c).
 * Declarations only: the router includes this, each handler file defines its part. */
#ifndef WEB_HANDLERS_H
#define WEB_HANDLERS_H

struct web_req;

typedef void (*web_handler)(struct web_req *r);

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
void web_h_room_join_post(struct web_req *r);
void web_h_room_edit_get(struct web_req *r);
void web_h_room_edit_post(struct web_req *r);
void web_h_room_leave_post(struct web_req *r);
void web_h_room_invite_post(struct web_req *r);
void web_h_room_invite_revoke_post(struct web_req *r);
void web_h_room_member_add_post(struct web_req *r);
void web_h_room_member_remove_post(struct web_req *r);
void web_h_invite_get(struct web_req *r);
void web_h_invite_post(struct web_req *r);
void web_h_admin_get(struct web_req *r);
void web_h_admin_ban_post(struct web_req *r);
void web_h_admin_unban_post(struct web_req *r);
void web_h_admin_promote_post(struct web_req *r);
void web_h_admin_room_delete_post(struct web_req *r);
void web_h_api_token_post(struct web_req *r);
void web_h_api_rooms_get(struct web_req *r);
void web_h_api_room_read_post(struct web_req *r);
void web_h_healthz_get(struct web_req *r);
void web_h_static_get(struct web_req *r);

#endif
