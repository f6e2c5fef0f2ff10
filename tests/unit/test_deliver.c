/*
 * test_deliver.c - the pure half of consumers/tf_deliver.c, without servers:
 * the deliver.NAME.* configuration, the summary texts, the payload of every
 * kind (parsed back with jansson), Alertmanager's startsAt/endsAt, and which
 * HTTP statuses are retried or parked. The runner is tested on real parts by
 * tests/integration/test_alerts_deliver.sh.
 */
#include <stdlib.h>

#include <jansson.h>

#include "tf_config.h"
#include "tf_deliver.h"
#include "tf_test.h"
#include "unit/alerts_fixture.h"

#define S 1000000LL /* microseconds */

static void test_summary(void)
{
    char buf[512];
    tf_alert_row_t r = asean();
    tf_deliver_summary(&r, buf, sizeof(buf));
    CHECK_STR(buf, "ASEAN rose to #1 of CHN's partners, Jan-Nov 2020 YTD, US$609.58 bn");
    r.a.old_rank = 1;
    r.a.new_rank = 2;
    snprintf(r.a.partner, sizeof(r.a.partner), "EU");
    r.a.value_cents = 58600000000000LL;
    tf_deliver_summary(&r, buf, sizeof(buf));
    CHECK_STR(buf, "EU fell to #2 of CHN's partners, Jan-Nov 2020 YTD, US$586.00 bn");
    r = asean();
    r.a.old_rank = 0;
    r.a.new_rank = 9;
    r.a.flow = TF_FLOW_EXPORT;
    r.a.basis = TF_BASIS_MONTH;
    r.a.period = 2020 * 12 + 2;
    snprintf(r.a.partner, sizeof(r.a.partner), "VNM");
    r.a.value_cents = 310000000000LL;
    tf_deliver_summary(&r, buf, sizeof(buf));
    CHECK_STR(buf, "VNM entered CHN's top export partners at #9, Mar 2020, US$3.10 bn");
    r.a.old_rank = 10;
    r.a.new_rank = 0;
    r.a.basis = TF_BASIS_YTD;
    r.a.period = 2020 * 12 + 0;
    r.a.flow = TF_FLOW_INWARD;
    r.a.dataset = TF_DATASET_INVESTMENT;
    tf_deliver_summary(&r, buf, sizeof(buf));
    CHECK_STR(buf, "VNM dropped out of CHN's top inward investment partners (was #10), "
                   "Jan 2020 YTD, US$3.10 bn");
    r = asean();
    r.a.alert_id = 25;
    r.a.kind = TF_ALERT_RETRACTION;
    r.retracts = 21;
    r.a.value_cents = 57658000000000LL;
    tf_deliver_summary(&r, buf, sizeof(buf));
    CHECK_STR(buf, "Withdrawn: ASEAN rose to #1 of CHN's partners, Jan-Nov 2020 YTD - no longer "
                   "holds (US$576.58 bn; alert 21)");
    r.has_value = false;
    tf_deliver_summary(&r, buf, sizeof(buf));
    CHECK(strstr(buf, "(value n/a; alert 21)") != NULL);
}

static void test_classify(void)
{
    CHECK_INT(tf_deliver_classify(200), TF_DELIVER_DONE);
    CHECK_INT(tf_deliver_classify(204), TF_DELIVER_DONE);
    CHECK_INT(tf_deliver_classify(0), TF_DELIVER_RETRY); /* no response */
    CHECK_INT(tf_deliver_classify(500), TF_DELIVER_RETRY);
    CHECK_INT(tf_deliver_classify(503), TF_DELIVER_RETRY);
    CHECK_INT(tf_deliver_classify(408), TF_DELIVER_RETRY);
    CHECK_INT(tf_deliver_classify(429), TF_DELIVER_RETRY);
    CHECK_INT(tf_deliver_classify(400), TF_DELIVER_PARK);
    CHECK_INT(tf_deliver_classify(401), TF_DELIVER_PARK);
    CHECK_INT(tf_deliver_classify(404), TF_DELIVER_PARK);
    CHECK_INT(tf_deliver_classify(301), TF_DELIVER_PARK); /* redirects are not followed */
}

static const tf_cfg_prop_t no_props[] = {{NULL, 0, NULL, 0, 0, NULL, 0, NULL}};

/* A config with the deliver. prefix and the given key=value pairs (NULL
 * terminated); NULL if a set failed (errstr filled). */
static tf_config_t *cfg_with(const char *const *kv, char *errstr, size_t errlen)
{
    tf_config_t *c = tf_config_new("test", no_props);
    if (!c || tf_config_allow_prefix(c, "deliver.") != 0)
        return c;
    for (size_t i = 0; kv[i]; i += 2)
        if (tf_config_set(c, kv[i], kv[i + 1], "test", errstr, errlen) != 0) {
            tf_config_destroy(c);
            return NULL;
        }
    return c;
}

/* Parses kv; returns the rc of tf_deliver_conf_parse (or -2 if a set failed). */
static int parse(const char *const *kv, tf_deliver_conf_t *out, char *errstr, size_t errlen)
{
    tf_config_t *c = cfg_with(kv, errstr, errlen);
    if (!c)
        return -2;
    int rc = tf_deliver_conf_parse(c, out, errstr, errlen);
    tf_config_destroy(c);
    return rc;
}

static void test_config(void)
{
    char err[512] = "";
    tf_deliver_conf_t conf;
    const char *const ok[] = {"deliver.am.kind", "alertmanager",
                              "deliver.am.url", "http://127.0.0.1:9093/",
                              "deliver.slack.kind", "slack",
                              "deliver.slack.url", "https://hooks.example/services/T/B/SECRET",
                              "deliver.slack.filter.reporter", "CHN",
                              "deliver.slack.filter.level", "group",
                              "deliver.slack.filter.max_rank", "3",
                              "deliver.slack.filter.since", "2020-01",
                              "deliver.slack.auth_header", "Authorization: Bearer x",
                              "deliver.slack.start", "latest",
                              "deliver.slack.timeout_ms", "2500",
                              NULL};
    CHECK_MSG(parse(ok, &conf, err, sizeof(err)) == 0, "%s", err);
    CHECK_INT(conf.n, 2);
    if (conf.n == 2) {
        const tf_deliver_dest_t *am = &conf.dests[0], *sl = &conf.dests[1];
        CHECK_STR(am->name, "am");
        CHECK_INT(am->kind, TF_DELIVER_ALERTMANAGER);
        CHECK_STR(am->url, "http://127.0.0.1:9093/api/v2/alerts");
        CHECK_INT(am->timeout_ms, 10000);
        CHECK_INT(am->hold_s, 86400);
        CHECK(!am->start_latest);
        CHECK_STR(am->source, "/tradeflow/alerts");
        CHECK_STR(sl->name, "slack");
        CHECK_INT(sl->kind, TF_DELIVER_SLACK);
        CHECK_STR(sl->filter.reporter, "CHN");
        CHECK(sl->filter.has_level && sl->filter.level == TF_LEVEL_GROUP);
        CHECK_INT(sl->filter.max_rank, 3);
        CHECK_INT(sl->filter.since, 2020 * 12);
        CHECK_STR(sl->auth_header, "Authorization: Bearer x");
        CHECK(sl->start_latest);
        CHECK_INT(sl->timeout_ms, 2500);
        /* The filter is tradeflow-alerts' own. */
        tf_alert_row_t r = asean();
        CHECK(tf_alerts_filter_match(&sl->filter, &r));
        r.a.period = 2019 * 12 + 10;
        CHECK(!tf_alerts_filter_match(&sl->filter, &r));
        CHECK(tf_alerts_filter_match(&am->filter, &r));
        r.suppressed = true;
        CHECK(!tf_alerts_filter_match(&am->filter, &r));
    }
    tf_deliver_conf_free(&conf);

    /* --print-config masks the auth header and the URL's path. */
    tf_config_t *c = cfg_with(ok, err, sizeof(err));
    CHECK(c != NULL);
    if (c) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        tf_config_print(c, f);
        fclose(f);
        CHECK(strstr(text, "SECRET") == NULL);
        CHECK(strstr(text, "Bearer") == NULL);
        CHECK(strstr(text, "deliver.slack.url = https://hooks.example/********") != NULL);
        CHECK(strstr(text, "deliver.am.url = http://127.0.0.1:9093/  #") != NULL);
        free(text);
        tf_config_destroy(c);
    }

    /* Errors name the key. */
    struct {
        const char *k1, *v1, *k2, *v2, *k3, *v3, *want;
    } bad[] = {
        {"deliver.x.kind", "pager", "deliver.x.url", "http://h/", NULL, NULL,
         "deliver.x.kind: unknown kind \"pager\""},
        {"deliver.x.kind", "json", NULL, NULL, NULL, NULL,
         "both deliver.x.kind and deliver.x.url are required"},
        {"deliver.x.url", "ftp://h/", NULL, NULL, NULL, NULL, "not an http:// or https:// URL"},
        {"deliver.x.kind", "json", "deliver.x.url", "http://h/", "deliver.x.timeout_ms", "5",
         "deliver.x.timeout_ms: \"5\" is not an integer in [100, 600000]"},
        {"deliver.x.kind", "json", "deliver.x.url", "http://h/", "deliver.x.colour", "red",
         "unknown key \"deliver.x.colour\""},
        {"deliver.x.kind", "json", "deliver.x.url", "http://h/", "deliver.x.auth_header",
         "Bearer x", "expected \"Name: value\""},
        {"deliver.x.kind", "json", "deliver.x.url", "http://h/", "deliver.x.filter.flow", "both",
         "deliver.x.filter.flow: unknown flow"},
        {"deliver.x.kind", "json", "deliver.x.url", "http://h/", "deliver.x.ca_file",
         "/nonexistent/ca.pem", "deliver.x.ca_file: cannot read"},
        {"deliver.a b.kind", "json", NULL, NULL, NULL, NULL, "only letters, digits"},
        {"deliver.x", "json", NULL, NULL, NULL, NULL, "expected deliver.NAME.KEY"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *kv[7] = {bad[i].k1, bad[i].v1, bad[i].k2, bad[i].v2, bad[i].k3, bad[i].v3,
                             NULL};
        err[0] = '\0';
        CHECK_MSG(parse(kv, &conf, err, sizeof(err)) == -1 && strstr(err, bad[i].want),
                  "case %zu: \"%s\"", i, err);
        CHECK_INT(conf.n, 0);
    }
    /* Without tf_config_allow_prefix, deliver.* is an unknown key. */
    tf_config_t *plain = tf_config_new("test", no_props);
    CHECK(plain && tf_config_set(plain, "deliver.x.kind", "json", "t", err, sizeof(err)) != 0);
    tf_config_destroy(plain);
}

/* Parses a payload built for a destination of kind k. */
static json_t *payload(tf_deliver_kind_t k, const tf_alert_row_t *r, int64_t shift_us,
                       int64_t now, const char **ctype)
{
    tf_deliver_dest_t d;
    memset(&d, 0, sizeof(d));
    d.kind = k;
    d.hold_s = 86400;
    d.source = (char *)"/tradeflow/alerts";
    char *s = tf_deliver_payload(&d, r, shift_us, now, ctype);
    CHECK(s != NULL);
    json_t *j = s ? json_loads(s, 0, NULL) : NULL;
    CHECK_MSG(j != NULL, "not JSON: %s", s ? s : "(null)");
    free(s);
    return j;
}

static const char *str_at(json_t *o, const char *path)
{
    /* path: keys and [index] separated by '.', e.g. "0.labels.partner" */
    char buf[256], *save = NULL;
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *t = strtok_r(buf, ".", &save); t && o; t = strtok_r(NULL, ".", &save))
        o = (*t >= '0' && *t <= '9') ? json_array_get(o, (size_t)atoi(t)) : json_object_get(o, t);
    return json_is_string(o) ? json_string_value(o) : "(missing)";
}

static void test_payloads(void)
{
    tf_alert_row_t r = asean();
    const char *ct;
    int64_t detected = r.a.detected_at_us;

    /* Alertmanager, in time: fires from detected_at for hold_s (24 h). */
    json_t *j = payload(TF_DELIVER_ALERTMANAGER, &r, 0, detected + 2 * S, &ct);
    CHECK_STR(ct, "application/json");
    CHECK(json_is_array(j) && json_array_size(j) == 1);
    CHECK_STR(str_at(j, "0.labels.alertname"), "TradeflowRankingShift");
    CHECK_STR(str_at(j, "0.labels.reporter"), "CHN");
    CHECK_STR(str_at(j, "0.labels.partner"), "ASEAN");
    CHECK_STR(str_at(j, "0.labels.period"), "2020-11");
    CHECK_STR(str_at(j, "0.labels.kind"), "shift");
    CHECK_STR(str_at(j, "0.labels.direction"), "up");
    CHECK_STR(str_at(j, "0.labels.old_rank"), "2");
    CHECK_STR(str_at(j, "0.labels.new_rank"), "1");
    CHECK_STR(str_at(j, "0.annotations.summary"),
              "ASEAN rose to #1 of CHN's partners, Jan-Nov 2020 YTD, US$609.58 bn");
    CHECK_STR(str_at(j, "0.annotations.alert_id"), "21");
    CHECK_STR(str_at(j, "0.annotations.idempotency_key"), "21");
    CHECK_STR(str_at(j, "0.annotations.value_usd"), "609580000000.00");
    CHECK_STR(str_at(j, "0.startsAt"), "2020-12-01T00:00:00.123456Z");
    CHECK_STR(str_at(j, "0.endsAt"), "2020-12-02T00:00:00.123456Z");
    json_decref(j);
    /* Delivered two days late (an outage): still fires for 10 minutes. */
    j = payload(TF_DELIVER_ALERTMANAGER, &r, 0, detected + 2 * 86400 * S, &ct);
    CHECK_STR(str_at(j, "0.endsAt"), "2020-12-03T00:10:00.123456Z");
    json_decref(j);
    /* A retraction resolves the shift: its labels, its startsAt, endsAt now. */
    tf_alert_row_t x = r;
    x.a.alert_id = 25;
    x.a.kind = TF_ALERT_RETRACTION;
    x.retracts = 21;
    x.a.detected_at_us = detected + 3600 * S;
    j = payload(TF_DELIVER_ALERTMANAGER, &x, detected, detected + 3601 * S, &ct);
    CHECK_STR(str_at(j, "0.labels.kind"), "shift");
    CHECK_STR(str_at(j, "0.labels.old_rank"), "2");
    CHECK_STR(str_at(j, "0.labels.new_rank"), "1");
    CHECK_STR(str_at(j, "0.annotations.alert_id"), "21");
    CHECK_STR(str_at(j, "0.annotations.retracted_by"), "25");
    CHECK_STR(str_at(j, "0.annotations.idempotency_key"), "25");
    CHECK_STR(str_at(j, "0.startsAt"), "2020-12-01T00:00:00.123456Z");
    CHECK_STR(str_at(j, "0.endsAt"), "2020-12-01T01:00:01.123456Z");
    json_decref(j);

    /* Slack: text + blocks; the key is the section's block_id. */
    j = payload(TF_DELIVER_SLACK, &r, 0, detected, &ct);
    CHECK_STR(str_at(j, "text"),
              "ASEAN rose to #1 of CHN's partners, Jan-Nov 2020 YTD, US$609.58 bn");
    CHECK_STR(str_at(j, "blocks.0.type"), "section");
    CHECK_STR(str_at(j, "blocks.0.block_id"), "21");
    CHECK_STR(str_at(j, "blocks.0.text.type"), "mrkdwn");
    CHECK_STR(str_at(j, "blocks.1.type"), "context");
    CHECK(strstr(str_at(j, "blocks.1.elements.0.text"), "ASEAN 2 -> 1") != NULL);
    json_decref(j);

    /* Teams Workflows: a message with one Adaptive Card. */
    j = payload(TF_DELIVER_TEAMS, &r, 0, detected, &ct);
    CHECK_STR(str_at(j, "type"), "message");
    CHECK_STR(str_at(j, "attachments.0.contentType"), "application/vnd.microsoft.card.adaptive");
    CHECK_STR(str_at(j, "attachments.0.content.type"), "AdaptiveCard");
    CHECK_STR(str_at(j, "attachments.0.content.version"), "1.4");
    CHECK_STR(str_at(j, "attachments.0.content.body.0.type"), "TextBlock");
    CHECK_STR(str_at(j, "attachments.0.content.body.1.type"), "FactSet");
    CHECK_STR(str_at(j, "attachments.0.content.body.1.facts.6.title"), "Alert id");
    CHECK_STR(str_at(j, "attachments.0.content.body.1.facts.6.value"), "21");
    json_decref(j);

    /* CloudEvents 1.0 structured mode. */
    j = payload(TF_DELIVER_CLOUDEVENTS, &r, 0, detected, &ct);
    CHECK_STR(ct, "application/cloudevents+json");
    CHECK_STR(str_at(j, "specversion"), "1.0");
    CHECK_STR(str_at(j, "id"), "21");
    CHECK_STR(str_at(j, "source"), "/tradeflow/alerts");
    CHECK_STR(str_at(j, "type"), "org.tradeflow.ranking.shift");
    CHECK_STR(str_at(j, "subject"), "customs/CHN/total/ytd/group/2020-11/ASEAN");
    CHECK_STR(str_at(j, "time"), "2020-12-01T00:00:00.123456Z");
    CHECK_STR(str_at(j, "datacontenttype"), "application/json");
    CHECK_STR(str_at(j, "data.partner"), "ASEAN");
    CHECK_STR(str_at(j, "data.value_usd"), "609580000000.00");
    json_decref(j);
    j = payload(TF_DELIVER_CLOUDEVENTS, &x, 0, detected, &ct);
    CHECK_STR(str_at(j, "type"), "org.tradeflow.ranking.retraction");
    CHECK_STR(str_at(j, "id"), "25");
    CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "data"), "retracts")), 21);
    json_decref(j);

    /* Generic JSON: tradeflow-alerts --json plus summary and the key. */
    j = payload(TF_DELIVER_JSON, &r, 0, detected, &ct);
    CHECK_INT(json_integer_value(json_object_get(j, "alert_id")), 21);
    CHECK_STR(str_at(j, "idempotency_key"), "21");
    CHECK_STR(str_at(j, "detected_at"), "2020-12-01T00:00:00.123456Z");
    CHECK_STR(str_at(j, "summary"),
              "ASEAN rose to #1 of CHN's partners, Jan-Nov 2020 YTD, US$609.58 bn");
    json_decref(j);
}

static void test_names(void)
{
    tf_deliver_kind_t k;
    const char *names[] = {"alertmanager", "slack", "teams", "cloudevents", "json"};
    for (int i = 0; i < 5; i++) {
        CHECK(tf_deliver_kind_parse(names[i], &k) == 0 && (int)k == i);
        CHECK_STR(tf_deliver_kind_name(k), names[i]);
    }
    CHECK(tf_deliver_kind_parse("Slack", &k) != 0);
}

int main(void)
{
    TF_TEST_RUN(test_summary);
    TF_TEST_RUN(test_classify);
    TF_TEST_RUN(test_config);
    TF_TEST_RUN(test_payloads);
    TF_TEST_RUN(test_names);
    return TF_TEST_REPORT();
}
