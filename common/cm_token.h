/* Chat tokens: HS256 JWTs signed by the website and verified by the chat daemon.
 * Claims (docs/protocol.md "Chat token"): iss="website", aud="chat", sub=email, uid=the user's
 * public id, name, room, rid=the room's id (rooms.id), iat, exp, jti (RFC 7519 §4.1 for the
 * registered ones), and optionally sid: the non-secret public id of the website session the
 * token was issued to (sessions.public_id, never the cookie or its hash), which lets a logout
 * revoke that session's tokens (docs/protocol.md "Moderation"). */
#ifndef CM_TOKEN_H
#define CM_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CM_TOKEN_SECRET_MIN 32 /* bytes; both daemons refuse to start with less */
#define CM_TOKEN_SECRET_MAX 4096
#define CM_TOKEN_MAX_LEN 4096 /* longest token accepted at all, before any decoding */
#define CM_TOKEN_TTL_MAX 3600 /* a token claiming a longer life is refused */
#define CM_TOKEN_LEEWAY 30    /* seconds of clock skew tolerated on iat/nbf */
#define CM_TOKEN_ISSUER "website"
#define CM_TOKEN_AUDIENCE "chat"

#define CM_EMAIL_MAX 254
#define CM_NAME_MAX 64 /* display name, in characters (code points) */
#define CM_UID_MAX 64  /* public user id: 1..64 of [A-Za-z0-9_-] (the website uses a UUID) */
#define CM_SID_MAX 64  /* public session id (claim sid): 1..64 of [A-Za-z0-9_-], optional */
#define CM_TOKEN_RID_MAX 9007199254740991LL /* 2^53 - 1: exact in every JSON parser */
#define CM_ROOM_MIN 3
#define CM_ROOM_MAX 32

struct cm_token_claims {
    char sub[CM_EMAIL_MAX + 1];
    char uid[CM_UID_MAX + 1];
    char name[CM_NAME_MAX * 4 + 1];
    char room[CM_ROOM_MAX + 1];
    int64_t rid; /* rooms.id, 1..2^53-1: names are reused after a deletion, ids never are */
    char jti[33];
    char sid[CM_SID_MAX + 1]; /* "" = no sid claim (set it after cm_token_claims_init) */
    int64_t iat;
    int64_t exp;
};

enum cm_token_err {
    CM_TOKEN_OK = 0,
    CM_TOKEN_BAD_KEY,       /* secret missing or shorter than CM_TOKEN_SECRET_MIN */
    CM_TOKEN_MALFORMED,     /* not three base64url parts, bad JSON, too long */
    CM_TOKEN_BAD_ALG,       /* header alg is not exactly HS256 (none, HS512, RS256, ...) */
    CM_TOKEN_BAD_SIGNATURE, /* HMAC does not match */
    CM_TOKEN_EXPIRED,       /* now >= exp */
    CM_TOKEN_NOT_YET_VALID, /* iat or nbf in the future beyond the leeway */
    CM_TOKEN_BAD_ISSUER,
    CM_TOKEN_BAD_AUDIENCE,
    CM_TOKEN_BAD_CLAIM, /* sub, uid, name, room, rid, exp, iat missing or of the wrong shape */
};

const char *cm_token_strerror(enum cm_token_err err);

/* True if [s, s+len) matches [a-z0-9][a-z0-9-]{2,31}. */
bool cm_room_name_valid(const char *s, size_t len);

/* True if [s, s+len) is a public user id: 1 to CM_UID_MAX characters of [A-Za-z0-9_-]
 * (so it can be put in JSON, logs and Redis keys without escaping). */
bool cm_uid_valid(const char *s, size_t len);

/* Fills claims for (sub, uid, name, room, rid) valid from now_s for ttl_s seconds, with a random
 * jti. Returns -1 if a field does not fit the bounds above. */
int cm_token_claims_init(struct cm_token_claims *c, const char *sub, const char *uid,
                         const char *name, const char *room, int64_t rid, int64_t now_s,
                         int64_t ttl_s);

/* Signs claims with HS256. On success *out is a malloc'd NUL-terminated token the caller
 * frees with free(). Returns CM_TOKEN_OK, CM_TOKEN_BAD_KEY or CM_TOKEN_BAD_CLAIM. */
enum cm_token_err cm_token_sign(const struct cm_token_claims *c, const unsigned char *key,
                                size_t keylen, char **out);

/* Verifies token [tok, tok+len) at time now_s (Unix seconds). Accepts only HS256 with the
 * given key and the claims above; fills *out only on success. Never trusts libjwt for
 * anything but the HMAC: the header, exp, iss, aud and claim shapes are checked here. */
enum cm_token_err cm_token_verify(const char *tok, size_t len, const unsigned char *key,
                                  size_t keylen, int64_t now_s, struct cm_token_claims *out);

#endif
