/* lws-bare: the floor under Parley's chat daemon. A bare libwebsockets room broadcaster in
 * the manner of lws's minimal-ws-server-ring (v4.1.6): one ring per room, one tail per
 * client, write only when writable, cull the clients that hold the oldest tail when a
 * room's ring is full. No tokens, no JSON: the room comes from the URL (?room=NAME) and
 * every received text frame goes, unchanged, to everyone in the room, sender included.
 *
 * usage: lws-bare PORT  (listens on 127.0.0.1) */
#include <libwebsockets.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BARE_RING_ELEMENTS 1024 /* messages queued per room before the laggards are culled */
#define BARE_ROOM_NAME_MAX 64
#define BARE_ROOM_BUCKETS 4096
#define BARE_RX_BUFFER 8192 /* a text frame bigger than this arrives fragmented: refused */

struct bare_msg {
    unsigned char *payload; /* LWS_PRE headroom, then the frame */
    size_t len;
};

struct bare_room;

struct bare_pss {
    struct bare_pss *pss_list;
    struct lws *wsi;
    struct bare_room *room;
    uint32_t tail;
};

struct bare_room {
    struct bare_room *next;
    struct lws_ring *ring;
    struct bare_pss *pss_list;
    char name[BARE_ROOM_NAME_MAX];
};

static struct bare_room *rooms[BARE_ROOM_BUCKETS];
static volatile sig_atomic_t interrupted;

static void bare_msg_destroy(void *m)
{
    struct bare_msg *msg = m;
    free(msg->payload);
    msg->payload = NULL;
    msg->len = 0;
}

static unsigned bare_hash(const char *s)
{
    unsigned h = 5381;
    while (*s)
        h = h * 33u + (unsigned char)*s++;
    return h % BARE_ROOM_BUCKETS;
}

static struct bare_room *bare_room_get(const char *name)
{
    unsigned b = bare_hash(name);
    for (struct bare_room *r = rooms[b]; r; r = r->next)
        if (!strcmp(r->name, name))
            return r;
    struct bare_room *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->ring = lws_ring_create(sizeof(struct bare_msg), BARE_RING_ELEMENTS, bare_msg_destroy);
    if (!r->ring) {
        free(r);
        return NULL;
    }
    snprintf(r->name, sizeof r->name, "%s", name);
    r->next = rooms[b];
    rooms[b] = r;
    return r;
}

static void bare_room_release(struct bare_room *r)
{
    if (r->pss_list)
        return;
    struct bare_room **pp = &rooms[bare_hash(r->name)];
    while (*pp != r)
        pp = &(*pp)->next;
    *pp = r->next;
    lws_ring_destroy(r->ring);
    free(r);
}

/* The ring is full: free the space held by departed clients, or else cull the clients
 * that are furthest behind (as minimal-ws-server-ring does). */
static void bare_cull_laggards(struct bare_room *r)
{
    uint32_t oldest = 0;
    size_t most = 0, total = lws_ring_get_count_waiting_elements(r->ring, NULL);
    for (struct bare_pss *p = r->pss_list; p; p = p->pss_list) {
        size_t w = lws_ring_get_count_waiting_elements(r->ring, &p->tail);
        if (w >= most) {
            most = w;
            oldest = p->tail;
        }
    }
    if (most < total) { /* the oldest tail belonged to a client that left */
        lws_ring_update_oldest_tail(r->ring, oldest);
        return;
    }
    struct bare_pss **pp = &r->pss_list;
    while (*pp) {
        struct bare_pss *p = *pp;
        if (lws_ring_get_count_waiting_elements(r->ring, &p->tail) == most) {
            *pp = p->pss_list;
            p->room = NULL;
            lws_set_timeout(p->wsi, PENDING_TIMEOUT_LAGGING, LWS_TO_KILL_ASYNC);
        } else {
            pp = &p->pss_list;
        }
    }
    most = 0;
    for (struct bare_pss *p = r->pss_list; p; p = p->pss_list) {
        size_t w = lws_ring_get_count_waiting_elements(r->ring, &p->tail);
        if (w >= most) {
            most = w;
            oldest = p->tail;
        }
    }
    if (r->pss_list)
        lws_ring_update_oldest_tail(r->ring, oldest);
    else
        lws_ring_consume(r->ring, NULL, NULL, total);
}

static int callback_bare(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct bare_pss *pss = user;
    char buf[BARE_ROOM_NAME_MAX + 8];
    const char *name;
    struct bare_msg m;
    const struct bare_msg *pm;

    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        name = lws_get_urlarg_by_name(wsi, "room=", buf, (int)sizeof buf);
        if (!name || !*name)
            name = "default";
        pss->room = bare_room_get(name);
        if (!pss->room)
            return -1;
        pss->wsi = wsi;
        /* join at the head: nothing already queued is for us */
        pss->tail = lws_ring_get_oldest_tail(pss->room->ring);
        lws_ring_consume(pss->room->ring, &pss->tail, NULL,
                         lws_ring_get_count_waiting_elements(pss->room->ring, &pss->tail));
        pss->pss_list = pss->room->pss_list;
        pss->room->pss_list = pss;
        break;

    case LWS_CALLBACK_CLOSED:
        if (pss->room) {
            struct bare_pss **pp = &pss->room->pss_list;
            while (*pp && *pp != pss)
                pp = &(*pp)->pss_list;
            if (*pp)
                *pp = pss->pss_list;
            bare_room_release(pss->room);
            pss->room = NULL;
        }
        break;

    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!pss->room)
            break;
        pm = lws_ring_get_element(pss->room->ring, &pss->tail);
        if (!pm)
            break;
        if (lws_write(wsi, pm->payload + LWS_PRE, pm->len, LWS_WRITE_TEXT) < (int)pm->len)
            return -1;
        lws_ring_consume_and_update_oldest_tail(pss->room->ring, struct bare_pss, &pss->tail, 1,
                                                pss->room->pss_list, tail, pss_list);
        if (lws_ring_get_element(pss->room->ring, &pss->tail))
            lws_callback_on_writable(wsi);
        break;

    case LWS_CALLBACK_RECEIVE:
        if (!pss->room)
            break;
        if (!lws_is_first_fragment(wsi) || !lws_is_final_fragment(wsi))
            return -1; /* a text bigger than the rx buffer: not part of this benchmark */
        if (!lws_ring_get_count_free_elements(pss->room->ring))
            bare_cull_laggards(pss->room);
        if (!pss->room || !lws_ring_get_count_free_elements(pss->room->ring))
            break;
        m.len = len;
        m.payload = malloc(LWS_PRE + len);
        if (!m.payload)
            break;
        memcpy(m.payload + LWS_PRE, in, len);
        if (!lws_ring_insert(pss->room->ring, &m, 1)) {
            bare_msg_destroy(&m);
            break;
        }
        for (struct bare_pss *p = pss->room->pss_list; p; p = p->pss_list)
            lws_callback_on_writable(p->wsi);
        break;

    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"bare", callback_bare, sizeof(struct bare_pss), BARE_RX_BUFFER, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

int main(int argc, char **argv)
{
    if (argc != 2 || atoi(argv[1]) < 1 || atoi(argv[1]) > 65535) {
        fprintf(stderr, "usage: lws-bare PORT\n");
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    lws_set_log_level(LLL_ERR, NULL);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = atoi(argv[1]);
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.count_threads = 1;
    /* no fd_limit_per_thread: below RLIMIT_NOFILE it makes lws 4.1.6 find every descriptor
     * by a linear search (lib/plat/unix/unix-fds.c wsi_from_fd) */
    info.gid = -1;
    info.uid = -1;
    struct lws_context *ctx = lws_create_context(&info);
    if (!ctx) {
        fprintf(stderr, "lws-bare: lws_create_context failed\n");
        return 1;
    }
    fprintf(stderr, "lws-bare: listening on 127.0.0.1:%d\n", info.port);
    while (!interrupted && lws_service(ctx, 0) >= 0) {
    }
    lws_context_destroy(ctx);
    return 0;
}
