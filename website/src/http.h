/* libmicrohttpd adapter: collects the body (bounded by WEB_MAX_BODY), calls the router once
 * the request is complete, turns the response fields of struct web_req (req.h) into an MHD
 * response with the security headers, and frees everything the request owned in one place
 * when MHD reports the request completed. */
#ifndef WEB_HTTP_H
#define WEB_HTTP_H

/* Starts and stops the MHD daemon (threading mode and limits from web_cfg). Stop the hash
 * pool (web_hash_pool_stop) before web_http_stop. */
int web_http_start(void);
void web_http_stop(void);

#endif
