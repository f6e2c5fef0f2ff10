/*
 * test_secret.c - common/tf_secret: what is masked for display (issue 14).
 * No server.
 */
#include "tf_secret.h"
#include "tf_test.h"

#include <string.h>

static char buf[512];

#define TEXT(in, want) CHECK_STR(tf_secret_mask_text(in, buf, sizeof buf), want)
#define VALUE(k, in, want) CHECK_STR(tf_secret_mask_value(k, in, buf, sizeof buf), want)

static void test_urls(void)
{
    TEXT("http://u:SECRET@host:8081", "http://u:********@host:8081");
    TEXT("https://u:SECRET@host/path?x=1", "https://u:********@host/path?x=1");
    TEXT("postgresql://u:pw@h:5/d", "postgresql://u:********@h:5/d");
    TEXT("postgres://u:p@ss@h/d", "postgres://u:********@h/d"); /* '@' in the password */
    TEXT("http://user@host/", "http://user@host/");             /* no password */
    TEXT("http://host:8081/subjects", "http://host:8081/subjects"); /* a port, no userinfo */
    TEXT("registry GET http://a:b@h/schemas/ids/3: HTTP 401",
         "registry GET http://a:********@h/schemas/ids/3: HTTP 401");
    TEXT("two: http://a:1@h1 and https://b:2@h2/x", "two: http://a:********@h1 and https://b:********@h2/x");
    TEXT("no url here", "no url here");
    TEXT("", "");
}

static void test_conninfo(void)
{
    TEXT("host=h password=hunter2 user=u", "host=h password=******** user=u");
    TEXT("host=h password='a b\\' c' user=u", "host=h password=******** user=u");
    TEXT("host=h password = spaced user=u", "host=h password = ******** user=u");
    TEXT("postgresql://h/d?password=x&sslmode=require",
         "postgresql://h/d?password=********&sslmode=require");
    TEXT("postgresql://u:pw@h/d?password=x", "postgresql://u:********@h/d?password=********");
    TEXT("PASSWORD=x", "PASSWORD=********");
    TEXT("sslpassword=x", "sslpassword=x" /* (a key of its own; masked by key below) */);
    TEXT("user=password", "user=password"); /* the word as a value is not a secret */
}

static void test_keys(void)
{
    CHECK(tf_secret_key("kafka.sasl.password"));
    CHECK(tf_secret_key("kafka.ssl.keystore.password"));
    CHECK(tf_secret_key("kafka.ssl.key.password"));
    CHECK(tf_secret_key("pg.password"));
    CHECK(tf_secret_key("pg.sslpassword"));
    CHECK(tf_secret_key("webhook.secret"));
    CHECK(tf_secret_key("kafka.sasl.oauthbearer.client.secret"));
    CHECK(tf_secret_key("kafka.sasl.oauthbearer.config"));
    CHECK(tf_secret_key("kafka.ssl.key.pem"));
    CHECK(tf_secret_key("some.api.token"));
    CHECK(tf_secret_key("X.PASSWORD"));
    CHECK(!tf_secret_key("kafka.sasl.username"));
    CHECK(!tf_secret_key("brokers"));
    CHECK(!tf_secret_key(NULL));
    VALUE("kafka.sasl.password", "hunter2", "********");
    VALUE("unknown.secret.key", "x", "********");
    VALUE("registry.user", "bob:pw", "bob:********");
    VALUE("registry.user", "bob", "bob");
    VALUE("registry.url", "http://u:SECRET@host", "http://u:********@host");
    VALUE("pg", "host=h password=x", "host=h password=********");
    VALUE("alertmanager.url", "https://a:b@am:9093/api/v2/alerts", "https://a:********@am:9093/api/v2/alerts");
    VALUE("group", "g", "g");
    CHECK(tf_secret_mask_value("group", NULL, buf, sizeof buf) == NULL);
}

static void test_truncation(void)
{
    char small[12];
    CHECK_STR(tf_secret_mask_text("http://u:SECRET@h", small, sizeof small), "http://u:**");
    CHECK(strstr(small, "SECRET") == NULL);
}

int main(void)
{
    TF_TEST_RUN(test_urls);
    TF_TEST_RUN(test_conninfo);
    TF_TEST_RUN(test_keys);
    TF_TEST_RUN(test_truncation);
    return TF_TEST_REPORT();
}
