/* Maps (method, path) to a handler; 404 for unknown paths, 405 with Allow for a known path
 * with another method. HEAD is served wherever GET is. */
#ifndef WEB_ROUTER_H
#define WEB_ROUTER_H

#include "req.h"

#include <stdbool.h>

void web_route(struct web_req *r);

/* True for the JSON API's paths (/api/..., /healthz): their errors are JSON. */
bool web_is_api_path(const char *path);

#endif
