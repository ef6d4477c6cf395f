#include "router.h"

#include "handlers.h"
#include "page.h"

#include <string.h>

/* A pattern is a path whose segments are literal or "*" (one captured segment, at most one
 * per pattern), or ends in "**" (the rest of the path, for /static/). */
struct route {
    const char *pattern;
    web_handler get; /* also HEAD */
    web_handler post;
};

static const struct route routes[] = {
    {"/", web_h_home, NULL},
    {"/register", web_h_register_get, web_h_register_post},
    {"/login", web_h_login_get, web_h_login_post},
    {"/logout", NULL, web_h_logout_post},
    {"/rooms", web_h_rooms_get, web_h_rooms_post},
    {"/rooms/*", web_h_room_get, NULL},
    {"/rooms/*/delete", NULL, web_h_room_delete_post},
    {"/rooms/*/join", NULL, web_h_room_join_post},
    {"/rooms/*/edit", web_h_room_edit_get, web_h_room_edit_post},
    {"/rooms/*/leave", NULL, web_h_room_leave_post},
    {"/rooms/*/invites", NULL, web_h_room_invite_post},
    {"/rooms/*/invites/revoke", NULL, web_h_room_invite_revoke_post},
    {"/rooms/*/members", NULL, web_h_room_member_add_post},
    {"/rooms/*/members/remove", NULL, web_h_room_member_remove_post},
    {"/invite/*", web_h_invite_get, web_h_invite_post},
    {"/admin", web_h_admin_get, NULL},
    {"/admin/users/*/ban", NULL, web_h_admin_ban_post},
    {"/admin/users/*/unban", NULL, web_h_admin_unban_post},
    {"/admin/users/*/promote", NULL, web_h_admin_promote_post},
    {"/admin/rooms/*/delete", NULL, web_h_admin_room_delete_post},
    {"/api/rooms", web_h_api_rooms_get, NULL},
    {"/api/rooms/*/token", NULL, web_h_api_token_post},
    {"/api/rooms/*/read", NULL, web_h_api_room_read_post},
    {"/healthz", web_h_healthz_get, NULL},
    {"/static/**", web_h_static_get, NULL},
};

static bool match(const char *pat, const char *path, const char **cap, size_t *caplen)
{
    *cap = NULL;
    *caplen = 0;
    while (*pat && *path) {
        if (pat[0] == '*' && pat[1] == '*') {
            *cap = path;
            *caplen = strlen(path);
            return *caplen > 0;
        }
        if (*pat == '*') {
            const char *slash = strchr(path, '/');
            size_t n = slash ? (size_t)(slash - path) : strlen(path);
            if (n == 0)
                return false;
            *cap = path;
            *caplen = n;
            path += n;
            pat++;
            continue;
        }
        if (*pat != *path)
            return false;
        pat++;
        path++;
    }
    return *pat == '\0' && *path == '\0';
}

bool web_is_api_path(const char *path)
{
    return strncmp(path, "/api/", 5) == 0 || strcmp(path, "/healthz") == 0;
}

void web_route(struct web_req *r)
{
    bool get = strcmp(r->method, "GET") == 0 || r->is_head;
    bool post = strcmp(r->method, "POST") == 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const struct route *rt = &routes[i];
        if (!match(rt->pattern, r->path, &r->param, &r->param_len))
            continue;
        if (get && rt->get) {
            rt->get(r);
            return;
        }
        if (post && rt->post) {
            rt->post(r);
            return;
        }
        web_resp_header(r, "Allow", "%s",
                        rt->get && rt->post ? "GET, HEAD, POST"
                        : rt->get           ? "GET, HEAD"
                                            : "POST");
        if (web_is_api_path(r->path))
            web_json_error(r, 405, "method_not_allowed", "Method not allowed.");
        else
            web_text(r, 405, "Method not allowed\n");
        return;
    }
    if (web_is_api_path(r->path))
        web_json_error(r, 404, "not_found", "No such endpoint.");
    else
        web_page_error(r, 404, "There is no page at this address.");
}
