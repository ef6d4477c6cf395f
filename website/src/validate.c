#include "validate.h"

#include "cm_util.h"

#include <string.h>

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

const char *web_valid_name(const char *s, size_t len)
{
    if (len == 0)
        return "Enter a name.";
    if (!web_text_clean(s, len, 0))
        return "The name contains characters that are not allowed.";
    if (cm_utf8_count(s, len) > WEB_NAME_MAX)
        return "The name is longer than 64 characters.";
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
    if (!web_text_clean(s, len, 0))
        return "The title contains characters that are not allowed.";
    if (cm_utf8_count(s, len) > WEB_TITLE_MAX)
        return "The title is longer than 100 characters.";
    return NULL;
}

const char *web_valid_description(const char *s, size_t len)
{
    if (!web_text_clean(s, len, 1))
        return "The description contains characters that are not allowed.";
    if (cm_utf8_count(s, len) > WEB_DESCRIPTION_MAX)
        return "The description is longer than 1000 characters.";
    return NULL;
}

bool web_valid_next(const char *s, size_t len)
{
    static const char pre[] = "/rooms";
    const size_t pl = sizeof pre - 1;
    if (!s || len < pl || memcmp(s, pre, pl) != 0)
        return false;
    if (len == pl)
        return true;
    return s[pl] == '/' && cm_room_name_valid(s + pl + 1, len - pl - 1);
}
