#include "validate.h"

#include "cm_alloc.h"
#include "cm_util.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

void web_trim(const char **s, size_t *len)
{
    const char *p = *s;
    size_t n = *len;
    while (n > 0 && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
        p++;
        n--;
    }
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n'))
        n--;
    *s = p;
    *len = n;
}

int web_text_clean(const char *s, size_t len, int multiline)
{
    if (!cm_utf8_valid(s, len))
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            if (multiline && (c == '\n' || c == '\r' || c == '\t'))
                continue;
            return 0;
        }
        /* C1 controls U+0080..U+009F are encoded as C2 80..C2 9F */
        if (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 &&
            (unsigned char)s[i + 1] <= 0x9f)
            return 0;
    }
    return 1;
}

static int email_char_ok(unsigned char c)
{
    if (c <= 0x20 || c >= 0x7f)
        return 0;
    return !strchr("<>()[],;:\"\\", c);
}

const char *web_valid_email(const char *s, size_t len, char *out)
{
    if (len == 0)
        return "Enter your email address.";
    if (len > WEB_EMAIL_MAX)
        return "That email address is too long.";
    const char *at = memchr(s, '@', len);
    if (!at || memchr(at + 1, '@', len - (size_t)(at - s) - 1))
        return "Enter an email address like name@example.com.";
    size_t local = (size_t)(at - s), dom = len - local - 1;
    if (local == 0 || local > WEB_EMAIL_LOCAL_MAX || dom < 3)
        return "Enter an email address like name@example.com.";
    for (size_t i = 0; i < len; i++)
        if (!email_char_ok((unsigned char)s[i]))
            return "Enter an email address like name@example.com.";
    const char *d = at + 1;
    if (!memchr(d, '.', dom) || d[0] == '.' || d[dom - 1] == '.' || d[0] == '-')
        return "Enter an email address like name@example.com.";
    for (size_t i = 0; i + 1 < dom; i++)
        if (d[i] == '.' && d[i + 1] == '.')
            return "Enter an email address like name@example.com.";
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[len] = '\0';
    return NULL;
}

/* What text_scan found wrong; each caller words its own message. */
enum text_fault {
    TEXT_OK = 0,
    TEXT_CONTROL,    /* Cc (but TAB/CR/LF in multi-line text), Zl, Zp */
    TEXT_INVISIBLE,  /* Cf and other default-ignorable code points: bidi controls, ZW chars */
    TEXT_UNASSIGNED, /* Cn (also noncharacters), Co private use, Cs surrogates */
    TEXT_MARKS,      /* a combining mark without a base, or more than WEB_MARKS_MAX on one */
};

/* Variation selectors 15/16 choose text or emoji style for the character before them: they
 * are default-ignorable but draw nothing of their own, so they are allowed (as marks). */
static bool is_emoji_selector(ucs4_t c)
{
    return c == 0xfe0e || c == 0xfe0f;
}

/* The rules shared by names, titles and descriptions (docs/names.md). [s, s+len) must be
 * valid UTF-8. Each check stops one way of deceiving a reader: bidi overrides, embeddings
 * and isolates (U+202A-202E, U+2066-2069) and marks (LRM, RLM, ALM) reorder the text that
 * follows on someone else's page; zero-width and other invisible characters make two names
 * look the same or a name look empty; unassigned and private-use code points render
 * differently (or as nothing) from one font to the next; stacked combining marks draw over
 * the lines around them. *has_alnum (may be NULL) tells whether a letter or digit was seen. */
static enum text_fault text_scan(const char *s, size_t len, bool multiline, bool *has_alnum)
{
    /* Scanned decomposed (NFD): "a" + U+0301 + U+0302 + U+0303 composes to one precomposed
     * letter with two marks left, but draws three. */
    size_t dl = 0;
    uint8_t *d = u8_normalize(UNINORM_NFD, (const uint8_t *)s, len, NULL, &dl);
    if (!d && len > 0)
        cm_oom(len);
    const uint8_t *p = d, *end = d + dl;
    size_t marks = 0;
    bool base = false, alnum = false;
    enum text_fault fault = TEXT_OK;
    while (p < end && fault == TEXT_OK) {
        ucs4_t c;
        int k = u8_mbtouc(&c, p, (size_t)(end - p));
        p += k;
        if (is_emoji_selector(c) || (uc_is_general_category(c, UC_CATEGORY_M) &&
                                     !uc_is_property_default_ignorable_code_point(c))) {
            if (!base || ++marks > WEB_MARKS_MAX)
                fault = TEXT_MARKS;
            continue;
        }
        if (uc_is_general_category(c, UC_CATEGORY_Cc)) {
            if (!(multiline && (c == '\n' || c == '\r' || c == '\t')))
                fault = TEXT_CONTROL;
        } else if (uc_is_general_category(c, UC_CATEGORY_Zl) ||
                   uc_is_general_category(c, UC_CATEGORY_Zp)) {
            fault = TEXT_CONTROL;
        } else if (uc_is_general_category(c, UC_CATEGORY_Cn) ||
                   uc_is_general_category(c, UC_CATEGORY_Co) ||
                   uc_is_general_category(c, UC_CATEGORY_Cs)) {
            fault = TEXT_UNASSIGNED;
        } else if (uc_is_general_category(c, UC_CATEGORY_Cf) ||
                   uc_is_property_default_ignorable_code_point(c)) {
            fault = TEXT_INVISIBLE;
        }
        if (uc_is_general_category(c, UC_CATEGORY_L) || uc_is_general_category(c, UC_CATEGORY_N))
            alnum = true;
        /* A space or line break is no base: a mark after it would stand alone. */
        base = !uc_is_general_category(c, UC_CATEGORY_Z) && c != '\n' && c != '\r' && c != '\t';
        marks = 0;
    }
    free(d);
    if (has_alnum)
        *has_alnum = alnum;
    return fault;
}

const char *web_valid_name(const char *s, size_t len, char out[WEB_NAME_BYTES + 1])
{
    out[0] = '\0';
    web_trim(&s, &len);
    if (len == 0)
        return "Enter a name.";
    if (len > WEB_NAME_INPUT_MAX)
        return "The name is longer than 64 characters.";
    if (!cm_utf8_valid(s, len))
        return "The name contains characters that are not allowed.";
    /* NFC first (UAX #15): the same name typed with a precomposed or a combining accent is
     * stored, shown and compared as the same characters. */
    size_t nl = 0;
    uint8_t *nfc = u8_normalize(UNINORM_NFC, (const uint8_t *)s, len, NULL, &nl);
    if (!nfc)
        cm_oom(len);
    /* Collapse every run of space separators (Zs: U+0020, NBSP, ideographic space, ...) into
     * one U+0020 and drop them at both ends: no name differs from another by its spacing. */
    char buf[WEB_NAME_INPUT_MAX * 4 + 1];
    size_t o = 0;
    bool pending = false;
    const uint8_t *p = nfc, *end = nfc + nl;
    while (p < end && o + 5 < sizeof buf) {
        ucs4_t c;
        int k = u8_mbtouc(&c, p, (size_t)(end - p));
        if (uc_is_general_category(c, UC_CATEGORY_Zs)) {
            pending = o > 0;
        } else {
            if (pending)
                buf[o++] = ' ';
            pending = false;
            memcpy(buf + o, p, (size_t)k);
            o += (size_t)k;
        }
        p += k;
    }
    bool cut = p < end; /* cannot happen: NFC grows text at most 3 times (UAX #15) */
    free(nfc);
    if (cut)
        return "The name is longer than 64 characters.";
    bool alnum = false;
    enum text_fault f = text_scan(buf, o, false, &alnum);
    if (f != TEXT_OK) {
        static const char *const msgs[] = {
            [TEXT_CONTROL] = "The name contains control characters or line breaks, which are "
                             "not allowed.",
            [TEXT_INVISIBLE] = "The name contains invisible formatting characters (such as "
                               "text-direction overrides or zero-width characters), which "
                               "are not allowed.",
            [TEXT_UNASSIGNED] = "The name contains unassigned or private-use characters, "
                                "which are not allowed.",
            [TEXT_MARKS] = "The name has a combining mark without a letter, or more than 2 "
                           "marks on one letter.",
        };
        return msgs[f];
    }
    if (cm_utf8_count(buf, o) > WEB_NAME_MAX || o > WEB_NAME_BYTES)
        return "The name is longer than 64 characters.";
    if (!alnum)
        return "The name needs at least one letter or digit.";
    memcpy(out, buf, o);
    out[o] = '\0';
    return NULL;
}

const char *web_valid_password(const char *s, size_t len)
{
    (void)s;
    if (len < WEB_PASSWORD_MIN)
        return "The password must have at least 8 characters.";
    if (len > WEB_PASSWORD_MAX)
        return "The password is longer than 1024 bytes.";
    return NULL;
}

const char *web_valid_room_name(const char *s, size_t len)
{
    if (len == 0)
        return "Enter a room name.";
    if (!cm_room_name_valid(s, len))
        return "Use 3 to 32 lower-case letters, digits or dashes, starting with a letter or "
               "digit.";
    return NULL;
}

const char *web_valid_title(const char *s, size_t len)
{
    if (len == 0)
        return "Enter a title.";
    if (!cm_utf8_valid(s, len))
        return "The title contains characters that are not allowed.";
    static const char *const msgs[] = {
        [TEXT_CONTROL] = "The title contains control characters or line breaks, which are not "
                         "allowed.",
        [TEXT_INVISIBLE] = "The title contains invisible formatting characters (such as "
                           "text-direction overrides or zero-width characters), which are "
                           "not allowed.",
        [TEXT_UNASSIGNED] = "The title contains unassigned or private-use characters, which "
                            "are not allowed.",
        [TEXT_MARKS] = "The title has a combining mark without a letter, or more than 2 marks "
                       "on one letter.",
    };
    enum text_fault f = text_scan(s, len, false, NULL);
    if (f != TEXT_OK)
        return msgs[f];
    if (cm_utf8_count(s, len) > WEB_TITLE_MAX)
        return "The title is longer than 100 characters.";
    return NULL;
}

const char *web_valid_description(const char *s, size_t len)
{
    if (!cm_utf8_valid(s, len))
        return "The description contains characters that are not allowed.";
    static const char *const msgs[] = {
        [TEXT_CONTROL] = "The description contains control characters, which are not allowed.",
        [TEXT_INVISIBLE] = "The description contains invisible formatting characters (such as "
                           "text-direction overrides or zero-width characters), which are "
                           "not allowed.",
        [TEXT_UNASSIGNED] = "The description contains unassigned or private-use characters, "
                            "which are not allowed.",
        [TEXT_MARKS] = "The description has a combining mark without a letter, or more than 2 "
                       "marks on one letter.",
    };
    enum text_fault f = text_scan(s, len, true, NULL);
    if (f != TEXT_OK)
        return msgs[f];
    if (cm_utf8_count(s, len) > WEB_DESCRIPTION_MAX)
        return "The description is longer than 1000 characters.";
    return NULL;
}

bool web_valid_next(const char *s, size_t len)
{
    static const char inv[] = "/invite/";
    const size_t il = sizeof inv - 1;
    if (s && len > il && len - il <= WEB_NEXT_CODE_MAX && memcmp(s, inv, il) == 0) {
        for (size_t i = il; i < len; i++)
            if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                  (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
                return false;
        return true;
    }
    static const char pre[] = "/rooms";
    const size_t pl = sizeof pre - 1;
    if (!s || len < pl || memcmp(s, pre, pl) != 0)
        return false;
    if (len == pl)
        return true;
    return s[pl] == '/' && cm_room_name_valid(s + pl + 1, len - pl - 1);
}
