/*
 * tf_registry.c - Confluent-compatible schema registry client (see
 * tf_registry.h). JSON through jansson, HTTP through libcurl.
 */
#include "tf_registry.h"
#include "tf_secret.h"
#include "tf_err.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_buf.h"

#define TF_REGISTRY_MAX_BODY (4u << 20)

typedef struct reg_entry {
    int32_t id;
    char *subject; /* NULL for entries learnt by id */
    char *schema;
} reg_entry_t;

struct tf_registry {
    CURL *curl;
    char *url;
    char *userinfo;
    char *ca_file;
    long timeout_ms;
    reg_entry_t *e;
    size_t n, cap;
    unsigned long requests;
};


static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

tf_registry_t *tf_registry_new(const char *url, const char *userinfo, const char *ca_file,
                               long timeout_ms, char *errstr, size_t errlen)
{
    if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
        tf_seterr(errstr, errlen, "registry URL must start with http:// or https://");
        return NULL;
    }
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        tf_seterr(errstr, errlen, "curl_global_init failed: %s", curl_easy_strerror(curl_init_rc));
        return NULL;
    }
    tf_registry_t *r = calloc(1, sizeof *r);
    if (!r)
        goto oom;
    r->url = strdup(url);
    if (!r->url)
        goto oom;
    size_t ul = strlen(r->url);
    while (ul > 0 && r->url[ul - 1] == '/')
        r->url[--ul] = '\0';
    if (userinfo && !(r->userinfo = strdup(userinfo)))
        goto oom;
    if (ca_file && !(r->ca_file = strdup(ca_file)))
        goto oom;
    r->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
    r->curl = curl_easy_init();
    if (!r->curl) {
        tf_seterr(errstr, errlen, "curl_easy_init failed");
        tf_registry_destroy(r);
        return NULL;
    }
    return r;
oom:
    tf_seterr(errstr, errlen, "out of memory");
    tf_registry_destroy(r);
    return NULL;
}

void tf_registry_destroy(tf_registry_t *r)
{
    if (!r)
        return;
    if (r->curl)
        curl_easy_cleanup(r->curl);
    for (size_t i = 0; i < r->n; i++) {
        free(r->e[i].subject);
        free(r->e[i].schema);
    }
    free(r->e);
    free(r->url);
    free(r->userinfo);
    free(r->ca_file);
    free(r);
}

unsigned long tf_registry_requests(const tf_registry_t *r)
{
    return r->requests;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    tf_buf_t *b = ud;
    size_t n = size * nmemb;
    if (b->len + n > TF_REGISTRY_MAX_BODY || tf_buf_append(b, ptr, n) < 0)
        return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    return n;
}

/* One HTTP request. On success returns the parsed JSON body (caller decrefs)
 * of a 2xx answer; otherwise NULL with the reason, including the registry's
 * own "message" when it sent one. */
static json_t *request(tf_registry_t *r, const char *method, const char *path,
                       const char *body, char *errstr, size_t errlen)
{
    CURL *c = r->curl;
    tf_buf_t resp = {0};
    struct curl_slist *hdr = NULL;
    json_t *j = NULL;
    char url[2048], cerr[CURL_ERROR_SIZE] = "";
    long status = 0;
    if ((size_t)snprintf(url, sizeof url, "%s%s", r->url, path) >= sizeof url) {
        tf_seterr(errstr, errlen, "registry URL too long");
        return NULL;
    }
    char shown[2048]; /* for messages: the URL's password masked */
    tf_secret_mask_text(url, shown, sizeof shown);
    curl_easy_reset(c);
    hdr = curl_slist_append(hdr, "Accept: application/vnd.schemaregistry.v1+json, application/json");
    if (body)
        hdr = curl_slist_append(hdr, "Content-Type: application/vnd.schemaregistry.v1+json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms < 5000 ? r->timeout_ms : 5000);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (r->userinfo) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERPWD, r->userinfo);
    }
    if (r->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, r->ca_file);
    r->requests++;
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(hdr);
    if (rc != CURLE_OK) {
        tf_seterr(errstr, errlen, "registry %s %s: %s", method, shown, cerr[0] ? cerr : curl_easy_strerror(rc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    json_error_t jerr;
    j = json_loadb((const char *)resp.data, resp.len, 0, &jerr);
    if (status < 200 || status > 299) {
        const char *msg = j ? json_string_value(json_object_get(j, "message")) : NULL;
        long code = j ? (long)json_integer_value(json_object_get(j, "error_code")) : 0;
        if (code)
            tf_seterr(errstr, errlen, "registry %s %s: HTTP %ld, error_code %ld: %s", method, shown,
                   status, code, msg ? msg : "(no message)");
        else
            tf_seterr(errstr, errlen, "registry %s %s: HTTP %ld%s%s", method, shown, status,
                   msg ? ": " : "", msg ? msg : "");
        json_decref(j);
        j = NULL;
        goto out;
    }
    if (!j || !json_is_object(j)) {
        tf_seterr(errstr, errlen, "registry %s %s: answer is not a JSON object", method, shown);
        json_decref(j);
        j = NULL;
    }
out:
    tf_buf_free(&resp);
    return j;
}

static int add_entry(tf_registry_t *r, int32_t id, const char *subject, const char *schema)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        reg_entry_t *e = realloc(r->e, cap * sizeof *e);
        if (!e)
            return -1;
        r->e = e;
        r->cap = cap;
    }
    reg_entry_t *e = &r->e[r->n];
    e->id = id;
    e->subject = subject ? strdup(subject) : NULL;
    e->schema = strdup(schema);
    if ((subject && !e->subject) || !e->schema) {
        free(e->subject);
        free(e->schema);
        return -1;
    }
    r->n++;
    return 0;
}

/* Percent-encodes a subject for the URL path. */
static void escape_subject(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s && o + 4 < outlen; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
}

int tf_registry_register(tf_registry_t *r, const char *subject, const char *schema_json,
                         int32_t *id, char *errstr, size_t errlen)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->e[i].subject && strcmp(r->e[i].subject, subject) == 0 &&
            strcmp(r->e[i].schema, schema_json) == 0) {
            *id = r->e[i].id;
            return 0;
        }
    char esc[1024], path[1200];
    escape_subject(subject, esc, sizeof esc);
    snprintf(path, sizeof path, "/subjects/%s/versions", esc);
    json_t *req = json_pack("{s:s}", "schema", schema_json);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body) {
        tf_seterr(errstr, errlen, "out of memory");
        return -1;
    }
    json_t *j = request(r, "POST", path, body, errstr, errlen);
    free(body);
    if (!j)
        return -1;
    json_t *jid = json_object_get(j, "id");
    if (!json_is_integer(jid) || json_integer_value(jid) < 0 ||
        json_integer_value(jid) > INT32_MAX) {
        tf_seterr(errstr, errlen, "registry answer to POST %s has no valid \"id\"", path);
        json_decref(j);
        return -1;
    }
    *id = (int32_t)json_integer_value(jid);
    json_decref(j);
    if (add_entry(r, *id, subject, schema_json) < 0) {
        tf_seterr(errstr, errlen, "out of memory");
        return -1;
    }
    return 0;
}

const char *tf_registry_schema_by_id(tf_registry_t *r, int32_t id, char *errstr, size_t errlen)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->e[i].id == id)
            return r->e[i].schema;
    if (id < 0) {
        tf_seterr(errstr, errlen, "schema id %d is negative", (int)id);
        return NULL;
    }
    char path[64];
    snprintf(path, sizeof path, "/schemas/ids/%d", (int)id);
    json_t *j = request(r, "GET", path, NULL, errstr, errlen);
    if (!j)
        return NULL;
    const char *s = json_string_value(json_object_get(j, "schema"));
    const char *type = json_string_value(json_object_get(j, "schemaType"));
    if (type && strcmp(type, "AVRO") != 0) {
        tf_seterr(errstr, errlen, "schema id %d is of type %s, not AVRO", (int)id, type);
        json_decref(j);
        return NULL;
    }
    if (!s) {
        tf_seterr(errstr, errlen, "registry answer to GET %s has no \"schema\" string", path);
        json_decref(j);
        return NULL;
    }
    if (add_entry(r, id, NULL, s) < 0) {
        tf_seterr(errstr, errlen, "out of memory");
        json_decref(j);
        return NULL;
    }
    json_decref(j);
    return r->e[r->n - 1].schema;
}
