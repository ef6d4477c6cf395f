/* Unit tests for the configuration table: defaults, ranges, secrets from files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm_config.h"

static long long port;
static char *host, *secret;

static const struct cm_cfg_entry table[] = {
    {"T_PORT", CM_CFG_INT, "8080", 1, 65535, &port, "port"},
    {"T_HOST", CM_CFG_STR, "127.0.0.1", 1, 64, &host, "host"},
    {"T_SECRET", CM_CFG_SECRET, NULL, 32, 4096, &secret, "a secret"},
};
#define N (sizeof table / sizeof table[0])

static int load(char *err)
{
    return cm_config_load(table, N, err, 256);
}

static void reset(void)
{
    unsetenv("T_PORT");
    unsetenv("T_HOST");
    unsetenv("T_SECRET");
    unsetenv("T_SECRET_FILE");
    cm_config_free(table, N);
}

static void defaults_and_required(void **state)
{
    (void)state;
    char err[256];
    reset();
    assert_int_equal(load(err), -1);
    assert_non_null(strstr(err, "T_SECRET"));
    setenv("T_SECRET", "0123456789abcdef0123456789abcdef", 1);
    assert_int_equal(load(err), 0);
    assert_int_equal(port, 8080);
    assert_string_equal(host, "127.0.0.1");
    assert_string_equal(secret, "0123456789abcdef0123456789abcdef");
    reset();
}

static void ranges(void **state)
{
    (void)state;
    char err[256];
    reset();
    setenv("T_SECRET", "0123456789abcdef0123456789abcdef", 1);
    setenv("T_PORT", "70000", 1);
    assert_int_equal(load(err), -1);
    assert_non_null(strstr(err, "T_PORT"));
    setenv("T_PORT", "80x", 1);
    assert_int_equal(load(err), -1);
    setenv("T_PORT", "", 1); /* empty is unset: default applies */
    assert_int_equal(load(err), 0);
    assert_int_equal(port, 8080);
    setenv("T_SECRET", "too short", 1);
    assert_int_equal(load(err), -1);
    assert_null(strstr(err, "too short")); /* the secret value never reaches the message */
    reset();
}

static void secret_file(void **state)
{
    (void)state;
    char err[256], path[] = "/tmp/cmcfgXXXXXX";
    reset();
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *v = "file-secret-file-secret-file-secret!!\n";
    assert_int_equal(write(fd, v, strlen(v)), (ssize_t)strlen(v));
    close(fd);
    setenv("T_SECRET_FILE", path, 1);
    assert_int_equal(load(err), 0);
    assert_string_equal(secret, "file-secret-file-secret-file-secret!!");
    setenv("T_SECRET", "0123456789abcdef0123456789abcdef", 1);
    assert_int_equal(load(err), -1); /* both set is ambiguous */
    unsetenv("T_SECRET");
    setenv("T_SECRET_FILE", "/nonexistent/secret", 1);
    assert_int_equal(load(err), -1);
    assert_non_null(strstr(err, "T_SECRET_FILE"));
    unlink(path);
    reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_and_required),
        cmocka_unit_test(ranges),
        cmocka_unit_test(secret_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
