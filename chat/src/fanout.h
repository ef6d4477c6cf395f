/* Fan-out: the one way a frame reaches the connections of a room, whatever its origin (a
 * local client's message, join/leave/typing, later a Redis subscription or a moderation
 * event), and the policy for connections that cannot keep up. Service thread only. */
#ifndef CHAT_FANOUT_H
#define CHAT_FANOUT_H

struct chat_server;
struct chat_room;
struct chat_conn;
struct chat_frame;

/* Takes ownership of f (a broadcast frame, f->exclude_conn names a connection that must
 * not get it, 0 = none), appends it to the room's ring and wakes every connection of the
 * room to write it. When the ring is full, the connections lagging by the whole ring are
 * dropped (chat_fanout_cull) so memory stays bounded. */
void chat_fanout_room(struct chat_server *srv, struct chat_room *room, struct chat_frame *f);

/* Drops a connection that does not read (no close frame: it would not get through); why
 * is a static string for the log. Idempotent. Safe from another connection's callback. */
void chat_fanout_cull(struct chat_server *srv, struct chat_conn *c, const char *why);

#endif
