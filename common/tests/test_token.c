/* Unit tests for chat token signing and verification: every rejection the contract names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_token.h"

static const char KEY[] = "0123456789abcdef0123456789abcdef-test-secret";
#define KEYLEN (sizeof KEY - 1)
static const int64_t NOW = 1900000000;

/* base64url without padding, for forging tokens by hand. */
static void b64url(const unsigned char *in, size_t len, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        if (i + 1 < len)
            out[o++] = tbl[(v >> 6) & 63];
        if (i + 2 < len)
            out[o++] = tbl[v & 63];
    }
    out[o] = '\0';
}

/* Builds header.payload.HMAC-SHA256(key) for arbitrary JSON: a correctly signed token whose
 * contents are hostile, so each claim check is tested on its own. */
static char *forge(const char *header, const char *payload, const char *key)
{
    static char tok[8192];
    char h[1024], p[4096];
    b64url((const unsigned char *)header, strlen(header), h);
    b64url((const unsigned char *)payload, strlen(payload), p);
    snprintf(tok, sizeof tok, "%s.%s", h, p);
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), key, (int)strlen(key), (unsigned char *)tok, strlen(tok), mac, &maclen);
    char s[64];
    b64url(mac, maclen, s);
    strcat(tok, ".");
    strcat(tok, s);
    return tok;
}

static const char *HDR = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

static char *payload(const char *iss, const char *aud, const char *extra)
{
    static char p[2048];
    snprintf(p, sizeof p,
             "{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"ann@example.com\",\"uid\":\"u-1\",\"name\":"
             "\"Ann\","
             "\"room\":\"lobby\",\"rid\":7,\"iat\":%lld,\"exp\":%lld,\"jti\":\"abc\"%s}",
             iss, aud, (long long)NOW, (long long)NOW + 60, extra);
    return p;
}

static enum cm_token_err verify(const char *tok)
{
    struct cm_token_claims c;
    return cm_token_verify(tok, strlen(tok), (const unsigned char *)KEY, KEYLEN, NOW, &c);
}

static char *sign_valid(void)
{
    struct cm_token_claims c;
    assert_int_equal(
        cm_token_claims_init(&c, "ann@example.com", "u-1", "Ann <b>", "lobby", 7, NOW, 60), 0);
    char *tok = NULL;
    assert_int_equal(cm_token_sign(&c, (const unsigned char *)KEY, KEYLEN, &tok), CM_TOKEN_OK);
    return tok;
}

static void roundtrip(void **state)
{
    (void)state;
    char *tok = sign_valid();
    struct cm_token_claims c;
    assert_int_equal(
        cm_token_verify(tok, strlen(tok), (const unsigned char *)KEY, KEYLEN, NOW + 59, &c),
        CM_TOKEN_OK);
    assert_string_equal(c.sub, "ann@example.com");
    assert_string_equal(c.uid, "u-1");
    assert_string_equal(c.name, "Ann <b>");
    assert_string_equal(c.room, "lobby");
    assert_int_equal(c.rid, 7);
    assert_int_equal(c.exp, NOW + 60);
    assert_int_equal(strlen(c.jti), 32);
    free(tok);
}

static void forged_valid_token_accepted(void **state)
{
    (void)state; /* proves the forging helper matches the real format, so rejections below
                    are caused by the one thing each test changes */
    assert_int_equal(verify(forge(HDR, payload("website", "chat", ""), KEY)), CM_TOKEN_OK);
}

static void alg_none_rejected(void **state)
{
    (void)state;
    char h[128], p[1024], tok[2048];
    const char *hdr = "{\"alg\":\"none\",\"typ\":\"JWT\"}";
    const char *pl = payload("website", "chat", "");
    b64url((const unsigned char *)hdr, strlen(hdr), h);
    b64url((const unsigned char *)pl, strlen(pl), p);
    snprintf(tok, sizeof tok, "%s.%s.", h, p); /* unsecured JWT: empty signature */
    assert_int_not_equal(verify(tok), CM_TOKEN_OK);
    /* the same with a signature part present is still refused for its alg */
    assert_int_equal(verify(forge(hdr, pl, KEY)), CM_TOKEN_BAD_ALG);
    /* and libjwt's own "none" output */
    jwt_t *jwt;
    jwt_new(&jwt);
    jwt_add_grants_json(jwt, pl);
    jwt_set_alg(jwt, JWT_ALG_NONE, NULL, 0);
    char *s = jwt_encode_str(jwt);
    assert_non_null(s);
    assert_int_not_equal(verify(s), CM_TOKEN_OK);
    free(s);
    jwt_free(jwt);
}

static void other_algs_rejected(void **state)
{
    (void)state;
    const char *pl = payload("website", "chat", "");
    assert_int_equal(verify(forge("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", pl, KEY)),
                     CM_TOKEN_BAD_ALG);
    assert_int_equal(verify(forge("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", pl, KEY)),
                     CM_TOKEN_BAD_ALG);
    assert_int_equal(verify(forge("{\"alg\":\"hs256\"}", pl, KEY)), CM_TOKEN_BAD_ALG);
    assert_int_equal(verify(forge("{\"typ\":\"JWT\"}", pl, KEY)), CM_TOKEN_BAD_ALG);
    /* a real HS512 token from libjwt with the right key */
    jwt_t *jwt;
    jwt_new(&jwt);
    jwt_add_grants_json(jwt, pl);
    jwt_set_alg(jwt, JWT_ALG_HS512, (const unsigned char *)KEY, (int)KEYLEN);
    char *s = jwt_encode_str(jwt);
    assert_int_equal(verify(s), CM_TOKEN_BAD_ALG);
    free(s);
    jwt_free(jwt);
}

static void wrong_secret_rejected(void **state)
{
    (void)state;
    const char *pl = payload("website", "chat", "");
    assert_int_equal(verify(forge(HDR, pl, "another-secret-of-at-least-32-bytes!!")),
                     CM_TOKEN_BAD_SIGNATURE);
    /* flipping one signature character */
    char *tok = sign_valid();
    size_t n = strlen(tok);
    tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(tok), CM_TOKEN_BAD_SIGNATURE);
    free(tok);
}

static void short_or_empty_key_refused(void **state)
{
    (void)state;
    char *tok = sign_valid();
    struct cm_token_claims c;
    assert_int_equal(cm_token_verify(tok, strlen(tok), (const unsigned char *)"", 0, NOW, &c),
                     CM_TOKEN_BAD_KEY);
    assert_int_equal(cm_token_verify(tok, strlen(tok), NULL, 0, NOW, &c), CM_TOKEN_BAD_KEY);
    assert_int_equal(cm_token_verify(tok, strlen(tok), (const unsigned char *)KEY, 31, NOW, &c),
                     CM_TOKEN_BAD_KEY);
    char *out = NULL;
    assert_int_equal(cm_token_sign(&c, (const unsigned char *)"short", 5, &out), CM_TOKEN_BAD_KEY);
    assert_null(out);
    free(tok);
}

static void time_checks(void **state)
{
    (void)state;
    char *tok = sign_valid();
    struct cm_token_claims c;
    const unsigned char *k = (const unsigned char *)KEY;
    assert_int_equal(cm_token_verify(tok, strlen(tok), k, KEYLEN, NOW + 60, &c), CM_TOKEN_EXPIRED);
    assert_int_equal(cm_token_verify(tok, strlen(tok), k, KEYLEN, NOW + 100000, &c),
                     CM_TOKEN_EXPIRED);
    assert_int_equal(cm_token_verify(tok, strlen(tok), k, KEYLEN, NOW - 3600, &c),
                     CM_TOKEN_NOT_YET_VALID);
    free(tok);
    char p[1024];
    assert_int_equal(verify(forge(HDR, payload("website", "chat", ",\"nbf\":1900009999"), KEY)),
                     CM_TOKEN_NOT_YET_VALID);
    /* a validly signed token claiming a day-long life is refused */
    snprintf(p, sizeof p,
             "{\"iss\":\"website\",\"aud\":\"chat\",\"sub\":\"a@b.c\",\"name\":\"A\","
             "\"room\":\"lobby\",\"rid\":7,\"iat\":%lld,\"exp\":%lld}",
             (long long)NOW, (long long)NOW + 86400);
    assert_int_equal(verify(forge(HDR, p, KEY)), CM_TOKEN_BAD_CLAIM);
    /* exp as a string, or missing */
    snprintf(p, sizeof p,
             "{\"iss\":\"website\",\"aud\":\"chat\",\"sub\":\"a@b.c\",\"name\":\"A\","
             "\"room\":\"lobby\",\"rid\":7,\"iat\":%lld,\"exp\":\"%lld\"}",
             (long long)NOW, (long long)NOW + 60);
    assert_int_equal(verify(forge(HDR, p, KEY)), CM_TOKEN_BAD_CLAIM);
    snprintf(p, sizeof p,
             "{\"iss\":\"website\",\"aud\":\"chat\",\"sub\":\"a@b.c\",\"name\":\"A\","
             "\"room\":\"lobby\",\"rid\":7,\"iat\":%lld}",
             (long long)NOW);
    assert_int_equal(verify(forge(HDR, p, KEY)), CM_TOKEN_BAD_CLAIM);
}

static void issuer_audience(void **state)
{
    (void)state;
    assert_int_equal(verify(forge(HDR, payload("evil", "chat", ""), KEY)), CM_TOKEN_BAD_ISSUER);
    assert_int_equal(verify(forge(HDR, payload("website", "web", ""), KEY)), CM_TOKEN_BAD_AUDIENCE);
    assert_int_equal(verify(forge(HDR, payload("Website", "chat", ""), KEY)), CM_TOKEN_BAD_ISSUER);
}

/* A payload with valid iss, aud and times around the given claim fields. */
static const char *with_fields(const char *fields)
{
    static char p[1024];
    snprintf(p, sizeof p,
             "{\"iss\":\"website\",\"aud\":\"chat\",\"rid\":7,%s,\"iat\":%lld,\"exp\":%lld}",
             fields, (long long)NOW, (long long)NOW + 60);
    return p;
}

static void missing_claims(void **state)
{
    (void)state;
    assert_int_equal(
        verify(forge(
            HDR, with_fields("\"uid\":\"u-1\",\"sub\":\"a@b.c\",\"name\":\"A\",\"room\":\"lobby\""),
            KEY)),
        CM_TOKEN_OK);
    assert_int_equal(
        verify(forge(HDR, with_fields("\"uid\":\"u-1\",\"sub\":\"a@b.c\",\"name\":\"A\""), KEY)),
        CM_TOKEN_BAD_CLAIM);
    assert_int_equal(
        verify(forge(HDR, with_fields("\"uid\":\"u-1\",\"name\":\"A\",\"room\":\"lobby\""), KEY)),
        CM_TOKEN_BAD_CLAIM);
    assert_int_equal(
        verify(
            forge(HDR, with_fields("\"uid\":\"u-1\",\"sub\":\"a@b.c\",\"room\":\"lobby\""), KEY)),
        CM_TOKEN_BAD_CLAIM);
    assert_int_equal(
        verify(forge(
            HDR,
            with_fields("\"uid\":\"u-1\",\"sub\":\"a@b.c\",\"name\":\"A\",\"room\":\"../etc\""),
            KEY)),
        CM_TOKEN_BAD_CLAIM);
    assert_int_equal(
        verify(forge(
            HDR, with_fields("\"uid\":\"u-1\",\"sub\":42,\"name\":\"A\",\"room\":\"lobby\""), KEY)),
        CM_TOKEN_BAD_CLAIM);
    /* uid: required, and only [A-Za-z0-9_-]{1,64} */
    assert_int_equal(
        verify(forge(HDR, with_fields("\"sub\":\"a@b.c\",\"name\":\"A\",\"room\":\"lobby\""), KEY)),
        CM_TOKEN_BAD_CLAIM);
    assert_int_equal(verify(forge(HDR,
                                  with_fields("\"uid\":\"u\\\"x\",\"sub\":\"a@b.c\",\"name\":"
                                              "\"A\",\"room\":\"lobby\""),
                                  KEY)),
                     CM_TOKEN_BAD_CLAIM);
    assert_int_equal(verify(forge(HDR,
                                  with_fields("\"uid\":7,\"sub\":\"a@b.c\",\"name\":\"A\","
                                              "\"room\":\"lobby\""),
                                  KEY)),
                     CM_TOKEN_BAD_CLAIM);
}

static void garbage_and_truncated(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "a",
                         "a.b",
                         "a.b.c.d",
                         "...",
                         "eyJhbGciOiJIUzI1NiJ9..sig",
                         "not a token at all",
                         "eyJ!.eyJ.abc",
                         "\xff\xfe.\x01.\x02"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(verify(bad[i]), CM_TOKEN_MALFORMED);
    char *tok = sign_valid();
    size_t n = strlen(tok);
    for (size_t cut = 1; cut < n; cut += 7) {
        struct cm_token_claims c;
        assert_int_not_equal(cm_token_verify(tok, cut, (const unsigned char *)KEY, KEYLEN, NOW, &c),
                             CM_TOKEN_OK);
    }
    /* header that is not JSON, payload that is not JSON, both correctly signed */
    assert_int_equal(verify(forge("not json", payload("website", "chat", ""), KEY)),
                     CM_TOKEN_MALFORMED);
    assert_int_equal(verify(forge(HDR, "[1,2,3]", KEY)), CM_TOKEN_MALFORMED);
    /* over the length cap */
    char *big = malloc(CM_TOKEN_MAX_LEN + 2);
    memset(big, 'A', CM_TOKEN_MAX_LEN + 1);
    big[CM_TOKEN_MAX_LEN + 1] = '\0';
    assert_int_equal(verify(big), CM_TOKEN_MALFORMED);
    free(big);
    free(tok);
}

static void claims_bounds(void **state)
{
    (void)state;
    struct cm_token_claims c;
    assert_int_equal(cm_token_claims_init(&c, "a@b.c", "u-1", "A", "Lobby", 7, NOW, 60), -1);
    assert_int_equal(cm_token_claims_init(&c, "a@b.c", "u-1", "A", "ab", 7, NOW, 60), -1);
    /* rid: a positive integer that every JSON parser holds exactly */
    assert_int_equal(cm_token_claims_init(&c, "a@b.c", "u-1", "A", "lobby", 0, NOW, 60), -1);
    assert_int_equal(cm_token_claims_init(&c, "a@b.c", "u-1", "A", "lobby", -3, NOW, 60), -1);
    assert_int_equal(
        cm_token_claims_init(&c, "a@b.c", "u-1", "A", "lobby", CM_TOKEN_RID_MAX + 1, NOW, 60), -1);
    assert_int_equal(
        cm_token_claims_init(&c, "a@b.c", "u-1", "A", "lobby", CM_TOKEN_RID_MAX, NOW, 60), 0);
    assert_int_equal(cm_token_claims_init(&c, "a@b.c", "u-1", "", "lobby", 7, NOW, 60), -1);
    assert_int_equal(cm_token_claims_init(&c, "a@b.c", "u-1", "\xc3\x28", "lobby", 7, NOW, 60), -1);
    assert_int_equal(cm_token_claims_init(&c, "a@b.c", "u-1", "A", "lobby", 7, NOW, 0), -1);
    assert_int_equal(cm_token_claims_init(&c, "a@b.c", "u-1", "Zoë", "lobby-2", 7, NOW, 60), 0);
    /* the public id goes into JSON, logs and Redis keys unescaped: only [A-Za-z0-9_-] */
    assert_int_equal(cm_token_claims_init(&c, "a@b.c", "", "A", "lobby", 7, NOW, 60), -1);
    assert_int_equal(cm_token_claims_init(&c, "a@b.c", "u\"1", "A", "lobby", 7, NOW, 60), -1);
    assert_int_equal(cm_token_claims_init(&c, "a@b.c", "u 1", "A", "lobby", 7, NOW, 60), -1);
    char longid[CM_UID_MAX + 2];
    memset(longid, 'a', sizeof longid - 1);
    longid[CM_UID_MAX + 1] = '\0';
    assert_int_equal(cm_token_claims_init(&c, "a@b.c", longid, "A", "lobby", 7, NOW, 60), -1);
    longid[CM_UID_MAX] = '\0';
    assert_int_equal(cm_token_claims_init(&c, "a@b.c", longid, "A", "lobby", 7, NOW, 60), 0);
    assert_true(cm_room_name_valid("abc", 3));
    assert_true(cm_room_name_valid("a-b-c-9", 7));
    assert_false(cm_room_name_valid("-abc", 4));
    assert_false(cm_room_name_valid("abc_d", 5));
    assert_false(cm_room_name_valid("abcdefghijabcdefghijabcdefghijabc", 33));
}

/* The optional sid claim (the session's public id, for logout revocation): round trip, absent
 * is "", and a present one of the wrong shape refuses the token. */
static void session_id_claim(void **state)
{
    (void)state;
    struct cm_token_claims c, out;
    assert_int_equal(cm_token_claims_init(&c, "ann@example.com", "u-1", "Ann", "lobby", 7, NOW, 60),
                     0);
    snprintf(c.sid, sizeof c.sid, "%s", "0123456789abcdef0123456789abcdef");
    char *tok = NULL;
    assert_int_equal(cm_token_sign(&c, (const unsigned char *)KEY, KEYLEN, &tok), CM_TOKEN_OK);
    assert_int_equal(
        cm_token_verify(tok, strlen(tok), (const unsigned char *)KEY, KEYLEN, NOW, &out),
        CM_TOKEN_OK);
    assert_string_equal(out.sid, "0123456789abcdef0123456789abcdef");
    free(tok);
    assert_int_equal(cm_token_verify(forge(HDR, payload("website", "chat", ""), KEY),
                                     strlen(forge(HDR, payload("website", "chat", ""), KEY)),
                                     (const unsigned char *)KEY, KEYLEN, NOW, &out),
                     CM_TOKEN_OK);
    assert_string_equal(out.sid, "");
    assert_int_equal(verify(forge(HDR, payload("website", "chat", ",\"sid\":\"a b\""), KEY)),
                     CM_TOKEN_BAD_CLAIM);
    assert_int_equal(verify(forge(HDR, payload("website", "chat", ",\"sid\":7"), KEY)),
                     CM_TOKEN_BAD_CLAIM);
    assert_int_equal(verify(forge(HDR, payload("website", "chat", ",\"sid\":\"\""), KEY)),
                     CM_TOKEN_BAD_CLAIM);
    /* a sid of the wrong shape is never signed */
    snprintf(c.sid, sizeof c.sid, "%s", "not/valid");
    assert_int_equal(cm_token_sign(&c, (const unsigned char *)KEY, KEYLEN, &tok),
                     CM_TOKEN_BAD_CLAIM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip),
        cmocka_unit_test(forged_valid_token_accepted),
        cmocka_unit_test(alg_none_rejected),
        cmocka_unit_test(other_algs_rejected),
        cmocka_unit_test(wrong_secret_rejected),
        cmocka_unit_test(short_or_empty_key_refused),
        cmocka_unit_test(time_checks),
        cmocka_unit_test(issuer_audience),
        cmocka_unit_test(missing_claims),
        cmocka_unit_test(garbage_and_truncated),
        cmocka_unit_test(claims_bounds),
        cmocka_unit_test(session_id_claim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
