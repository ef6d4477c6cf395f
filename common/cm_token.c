#include "cm_token.h"
#include "cm_log.h"
#include "cm_util.h"
#include "cm_alloc.h"

#include <cjson/cJSON.h>
#include <jwt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_MAX 256   /* decoded header bytes; ours is 27 */
#define PAYLOAD_MAX 2048 /* decoded payload bytes; ours is well under 1 KiB */
#define HS256_LEN 32

const char *cm_token_strerror(enum cm_token_err err)
{
    switch (err) {
    case CM_TOKEN_OK:
        return "ok";
    case CM_TOKEN_BAD_KEY:
        return "signing key missing or too short";
    case CM_TOKEN_MALFORMED:
        return "malformed token";
    case CM_TOKEN_BAD_ALG:
        return "algorithm not allowed";
    case CM_TOKEN_BAD_SIGNATURE:
        return "bad signature";
    case CM_TOKEN_EXPIRED:
        return "token expired";
    case CM_TOKEN_NOT_YET_VALID:
        return "token not yet valid";
    case CM_TOKEN_BAD_ISSUER:
        return "wrong issuer";
    case CM_TOKEN_BAD_AUDIENCE:
        return "wrong audience";
    case CM_TOKEN_BAD_CLAIM:
        return "missing or invalid claim";
    }
    return "unknown error";
}

bool cm_room_name_valid(const char *s, size_t len)
{
    if (len < CM_ROOM_MIN || len > CM_ROOM_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
        if (!ok)
            return false;
    }
    return true;
}

static bool copy_text(char *dst, size_t cap, const char *src, size_t max_chars)
{
    size_t len = strlen(src);
    if (len == 0 || len >= cap || !cm_utf8_valid(src, len) || cm_utf8_count(src, len) > max_chars)
        return false;
    memcpy(dst, src, len + 1);
    return true;
}

bool cm_uid_valid(const char *s, size_t len)
{
    if (len == 0 || len > CM_UID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

int cm_token_claims_init(struct cm_token_claims *c, const char *sub, const char *uid,
                         const char *name, const char *room, int64_t rid, int64_t now_s,
                         int64_t ttl_s)
{
    memset(c, 0, sizeof *c);
    if (rid < 1 || rid > CM_TOKEN_RID_MAX)
        return -1;
    c->rid = rid;
    if (!cm_uid_valid(uid, strlen(uid)))
        return -1;
    memcpy(c->uid, uid, strlen(uid) + 1);
    if (!copy_text(c->sub, sizeof c->sub, sub, CM_EMAIL_MAX) ||
        !copy_text(c->name, sizeof c->name, name, CM_NAME_MAX) ||
        !cm_room_name_valid(room, strlen(room)) || ttl_s <= 0 || ttl_s > CM_TOKEN_TTL_MAX)
        return -1;
    memcpy(c->room, room, strlen(room) + 1);
    unsigned char rnd[16];
    cm_random_bytes(rnd, sizeof rnd);
    cm_hex_encode(rnd, sizeof rnd, c->jti);
    c->iat = now_s;
    c->exp = now_s + ttl_s;
    return 0;
}

enum cm_token_err cm_token_sign(const struct cm_token_claims *c, const unsigned char *key,
                                size_t keylen, char **out)
{
    *out = NULL;
    if (!key || keylen < CM_TOKEN_SECRET_MIN || keylen > CM_TOKEN_SECRET_MAX)
        return CM_TOKEN_BAD_KEY;
    jwt_t *jwt = NULL;
    enum cm_token_err rc = CM_TOKEN_BAD_CLAIM;
    if (jwt_new(&jwt) != 0)
        cm_oom(sizeof(void *));
    if (jwt_set_alg(jwt, JWT_ALG_HS256, key, (int)keylen) != 0)
        goto out;
    if (jwt_add_grant(jwt, "iss", CM_TOKEN_ISSUER) ||
        jwt_add_grant(jwt, "aud", CM_TOKEN_AUDIENCE) || jwt_add_grant(jwt, "sub", c->sub) ||
        jwt_add_grant(jwt, "uid", c->uid) || jwt_add_grant(jwt, "name", c->name) ||
        jwt_add_grant(jwt, "room", c->room) || jwt_add_grant_int(jwt, "rid", (long)c->rid) ||
        jwt_add_grant(jwt, "jti", c->jti) || jwt_add_grant_int(jwt, "iat", (long)c->iat) ||
        jwt_add_grant_int(jwt, "exp", (long)c->exp))
        goto out;
    if (c->sid[0] && (!cm_uid_valid(c->sid, strlen(c->sid)) || jwt_add_grant(jwt, "sid", c->sid)))
        goto out;
    *out = jwt_encode_str(jwt);
    if (*out)
        rc = CM_TOKEN_OK;
out:
    jwt_free(jwt);
    return rc;
}

_Static_assert(CM_SID_MAX == CM_UID_MAX, "a sid has the shape of a uid: cm_uid_valid checks both");

/* Reads an integral JSON number that fits comfortably in int64 (|x| < 2^53). */
static bool get_int(const cJSON *obj, const char *key, int64_t *v)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(it))
        return false;
    double d = it->valuedouble;
    if (!isfinite(d) || d != floor(d) || fabs(d) > 9007199254740992.0)
        return false;
    *v = (int64_t)d;
    return true;
}

static const char *get_str(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* Structural checks on the raw token, before anything is decoded: bounded length, only the
 * base64url alphabet, exactly three non-empty parts. Stops oversized and garbage input
 * early, and stops "unsecured" tokens (empty signature) that libjwt accepts with no key. */
static enum cm_token_err split(const char *tok, size_t len, size_t dot[2])
{
    if (len == 0 || len > CM_TOKEN_MAX_LEN)
        return CM_TOKEN_MALFORMED;
    int ndots = 0;
    for (size_t i = 0; i < len; i++) {
        char c = tok[i];
        if (c == '.') {
            if (ndots == 2)
                return CM_TOKEN_MALFORMED;
            dot[ndots++] = i;
        } else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_')) {
            return CM_TOKEN_MALFORMED;
        }
    }
    if (ndots != 2 || dot[0] == 0 || dot[1] == dot[0] + 1)
        return CM_TOKEN_MALFORMED;
    return CM_TOKEN_OK;
}

/* Pins the algorithm: the header must say exactly HS256. Stops alg "none", algorithm
 * confusion (RS256 with the HMAC secret as a "public key"), and downgrade to other HMACs. */
static enum cm_token_err check_header(const char *b64, size_t len)
{
    unsigned char raw[HEADER_MAX];
    long n = cm_base64url_decode(b64, len, raw, sizeof raw);
    if (n <= 0)
        return CM_TOKEN_MALFORMED;
    cJSON *h = cJSON_ParseWithLength((const char *)raw, (size_t)n);
    if (!cJSON_IsObject(h)) {
        cJSON_Delete(h);
        return CM_TOKEN_MALFORMED;
    }
    enum cm_token_err rc = CM_TOKEN_OK;
    const char *alg = get_str(h, "alg");
    const char *typ = get_str(h, "typ");
    if (!alg || strcmp(alg, "HS256") != 0)
        rc = CM_TOKEN_BAD_ALG;
    else if (cJSON_GetObjectItemCaseSensitive(h, "typ") && (!typ || strcmp(typ, "JWT") != 0))
        rc = CM_TOKEN_MALFORMED;
    else if (cJSON_GetObjectItemCaseSensitive(h, "crit"))
        rc = CM_TOKEN_MALFORMED; /* RFC 7515 §4.1.11: unknown critical extensions => reject */
    cJSON_Delete(h);
    return rc;
}

static enum cm_token_err check_signature(const char *tok, size_t len, size_t sig_off,
                                         const unsigned char *key, size_t keylen)
{
    unsigned char sig[HS256_LEN + 3];
    if (cm_base64url_decode(tok + sig_off, len - sig_off, sig, sizeof sig) != HS256_LEN)
        return CM_TOKEN_BAD_SIGNATURE;
    char *copy = cm_xstrndup(tok, len);
    jwt_t *jwt = NULL;
    enum cm_token_err rc = CM_TOKEN_BAD_SIGNATURE;
    /* key is non-empty here: libjwt 1.10 skips verification entirely for an empty key. */
    if (jwt_decode(&jwt, copy, key, (int)keylen) == 0 && jwt_get_alg(jwt) == JWT_ALG_HS256)
        rc = CM_TOKEN_OK;
    jwt_free(jwt);
    free(copy);
    return rc;
}

static enum cm_token_err check_claims(const char *b64, size_t len, int64_t now,
                                      struct cm_token_claims *out)
{
    unsigned char raw[PAYLOAD_MAX];
    long n = cm_base64url_decode(b64, len, raw, sizeof raw);
    if (n <= 0)
        return CM_TOKEN_MALFORMED;
    cJSON *p = cJSON_ParseWithLength((const char *)raw, (size_t)n);
    if (!cJSON_IsObject(p)) {
        cJSON_Delete(p);
        return CM_TOKEN_MALFORMED;
    }
    struct cm_token_claims c;
    memset(&c, 0, sizeof c);
    enum cm_token_err rc = CM_TOKEN_BAD_CLAIM;
    const char *iss = get_str(p, "iss"), *aud = get_str(p, "aud");
    const char *sub = get_str(p, "sub"), *name = get_str(p, "name"), *uid = get_str(p, "uid");
    const char *room = get_str(p, "room"), *jti = get_str(p, "jti");
    int64_t nbf;

    if (!iss || strcmp(iss, CM_TOKEN_ISSUER) != 0) {
        rc = CM_TOKEN_BAD_ISSUER;
        goto out;
    }
    if (!aud || strcmp(aud, CM_TOKEN_AUDIENCE) != 0) {
        rc = CM_TOKEN_BAD_AUDIENCE;
        goto out;
    }
    if (!get_int(p, "exp", &c.exp) || !get_int(p, "iat", &c.iat))
        goto out;
    if (!get_int(p, "rid", &c.rid) || c.rid < 1 || c.rid > CM_TOKEN_RID_MAX)
        goto out;
    if (now >= c.exp) {
        rc = CM_TOKEN_EXPIRED;
        goto out;
    }
    if (c.iat > now + CM_TOKEN_LEEWAY) {
        rc = CM_TOKEN_NOT_YET_VALID;
        goto out;
    }
    if (cJSON_GetObjectItemCaseSensitive(p, "nbf")) {
        if (!get_int(p, "nbf", &nbf))
            goto out;
        if (nbf > now + CM_TOKEN_LEEWAY) {
            rc = CM_TOKEN_NOT_YET_VALID;
            goto out;
        }
    }
    /* A leaked token must not live long, whatever its issuer claimed. */
    if (c.exp - c.iat > CM_TOKEN_TTL_MAX || c.exp > now + CM_TOKEN_TTL_MAX + CM_TOKEN_LEEWAY)
        goto out;
    if (!sub || !copy_text(c.sub, sizeof c.sub, sub, CM_EMAIL_MAX))
        goto out;
    if (!name || !copy_text(c.name, sizeof c.name, name, CM_NAME_MAX))
        goto out;
    if (!uid || !cm_uid_valid(uid, strlen(uid)))
        goto out;
    memcpy(c.uid, uid, strlen(uid) + 1);
    if (!room || !cm_room_name_valid(room, strlen(room)))
        goto out;
    memcpy(c.room, room, strlen(room) + 1);
    if (jti && strlen(jti) < sizeof c.jti)
        memcpy(c.jti, jti, strlen(jti) + 1);
    /* optional; when present it has the shape of a public id (same alphabet, same bound) */
    if (cJSON_GetObjectItemCaseSensitive(p, "sid")) {
        const char *sid = get_str(p, "sid");
        if (!sid || !cm_uid_valid(sid, strlen(sid)))
            goto out;
        memcpy(c.sid, sid, strlen(sid) + 1);
    }
    *out = c;
    rc = CM_TOKEN_OK;
out:
    cJSON_Delete(p);
    return rc;
}

enum cm_token_err cm_token_verify(const char *tok, size_t len, const unsigned char *key,
                                  size_t keylen, int64_t now_s, struct cm_token_claims *out)
{
    if (!key || keylen < CM_TOKEN_SECRET_MIN || keylen > CM_TOKEN_SECRET_MAX)
        return CM_TOKEN_BAD_KEY;
    size_t dot[2];
    enum cm_token_err rc = split(tok, len, dot);
    if (rc == CM_TOKEN_OK)
        rc = check_header(tok, dot[0]);
    if (rc == CM_TOKEN_OK)
        rc = check_signature(tok, len, dot[1] + 1, key, keylen);
    if (rc == CM_TOKEN_OK)
        rc = check_claims(tok + dot[0] + 1, dot[1] - dot[0] - 1, now_s, out);
    return rc;
}
