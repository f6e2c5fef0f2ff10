/*
 * tf_source.h - source profiles of tradeflow-produce: statistics offices'
 * own layouts (UN Comtrade, Eurostat Comext, China Customs / GACC) mapped to
 * tf_record_t, with economy codes from Debian's iso-codes, currency
 * conversion through a user-supplied table of monthly rates, and a record
 * identity derived from the cell's key (sources publish no record ids).
 *
 * The readers of producers/tf_input.c split the bytes into rows (CSV, JSON
 * Lines, the Comtrade API's JSON document) and hand each row to
 * tf_source_build() as one string per profile column; every mapping rule
 * and rejection reason is here and in docs/input-formats.md ("Source
 * profiles").
 *
 * Ownership: tf_econ_t, tf_fx_t and tf_source_t are opaque handles owned by
 * the caller (free with their _free function). A tf_source_t borrows the
 * econ and fx tables given in its options: they must outlive it. Nothing
 * here prints or exits; errors come back as -1 / NULL with a one-line reason
 * in errstr. A tf_source_t is used by one thread at a time.
 */
#ifndef TF_SOURCE_H
#define TF_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tf_record.h"

typedef enum tf_source_kind {
    TF_SOURCE_PLAIN = 0, /* tradeflow's own layout (tf_input.c), no profile */
    TF_SOURCE_COMTRADE,
    TF_SOURCE_COMEXT,
    TF_SOURCE_GACC,
} tf_source_kind_t;

/* "plain", "comtrade", "comext", "gacc"; 0 ok, -1 unknown. */
int tf_source_parse(const char *s, tf_source_kind_t *out);
const char *tf_source_name(tf_source_kind_t k);

/* ---- economy codes (iso-codes) -------------------------------------- */

typedef struct tf_econ tf_econ_t;

/* Default locations of Debian's iso-codes data. */
#define TF_ISO3166_JSON "/usr/share/iso-codes/json/iso_3166-1.json"
#define TF_ISO3166_ZH_MO "/usr/share/locale/zh_CN/LC_MESSAGES/iso_3166-1.mo"
#define TF_ISO4217_JSON "/usr/share/iso-codes/json/iso_4217.json"

/* Loads ISO 3166-1 (alpha-2, alpha-3, numeric, English names) from json_path
 * and the Chinese names from the gettext catalogue zh_mo_path (the iso_3166-1
 * domain; NULL: no Chinese names), ISO 4217 currency codes from
 * currency_json (NULL: none known), plus the alias table of GACC's short
 * names (tf_econ_aliases). NULL paths in the first argument mean the
 * defaults above. Caller frees with tf_econ_free(). */
tf_econ_t *tf_econ_load(const char *json_path, const char *zh_mo_path, const char *currency_json,
                        char *errstr, size_t errlen);
void tf_econ_free(tf_econ_t *e);
size_t tf_econ_count(const tf_econ_t *e);
/* Alpha-3 code (owned by e) of an alpha-2 code, an alpha-3 code, a numeric
 * code ("156", leading zeros optional) or a Chinese name (iso-codes'
 * translations of the name, official name and common name, then the alias
 * table); NULL when unknown. */
const char *tf_econ_from_alpha2(const tf_econ_t *e, const char *a2);
const char *tf_econ_from_alpha3(const tf_econ_t *e, const char *a3);
const char *tf_econ_from_numeric(const tf_econ_t *e, const char *num);
const char *tf_econ_from_zh(const tf_econ_t *e, const char *name);
bool tf_econ_currency_known(const tf_econ_t *e, const char *code);

/* The one table of names a source uses beyond iso-codes (GACC's usual
 * short names); NULL-terminated, documented in docs/input-formats.md. */
typedef struct tf_econ_alias {
    const char *name;   /* as published (UTF-8) */
    const char *alpha3; /* must exist in iso-codes */
    const char *why;
} tf_econ_alias_t;
extern const tf_econ_alias_t tf_econ_aliases[];

/* ---- exchange rates (--fx FILE) -------------------------------------- */

typedef struct tf_fx tf_fx_t;

/* Reads a CSV table with the header `period,currency,usd_per_unit`
 * (period YYYY-MM or YYYYMM; currency an ISO 4217 code, checked against e
 * when it knows currencies; usd_per_unit a decimal > 0 with at most 10
 * decimal places). Any bad line, a duplicate (period, currency) or a missing
 * column fails the whole table: errstr is "FILE:LINE: reason". Caller frees
 * with tf_fx_free(). */
tf_fx_t *tf_fx_load(const char *path, const tf_econ_t *e, char *errstr, size_t errlen);
void tf_fx_free(tf_fx_t *fx);
size_t tf_fx_count(const tf_fx_t *fx);
/* USD per unit of currency in period, scaled by 10^10; 0 ok, -1 no rate. */
int tf_fx_rate(const tf_fx_t *fx, int32_t period, const char *currency, int64_t *rate_e10);

/* ---- numbers --------------------------------------------------------- */

/* A source's number: digits with an optional '.' fraction and an optional
 * exponent (1.5E7), when thousands is true also ',' between groups of three
 * digits ("1,234,567.5"); no sign except '-' (rejected as negative).
 * Rounded half up to `scale` decimal places. 0, or -1 with the reason. */
int tf_source_number(const char *s, int scale, bool thousands, int64_t *out, char *errstr,
                     size_t errlen);

/* "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM[:SS]" (also with a space for T) ->
 * YYYYMMDDHHMMSS, the revision of every record of that release. 0 or -1. */
int tf_release_parse(const char *s, int64_t *out, char *errstr, size_t errlen);

/* ---- profiles -------------------------------------------------------- */

/* --hs-level: which commodity rows a file contributes. Sources publish
 * totals and detail in the same table; taking both double-counts. */
#define TF_HS_LEVEL_TOTAL 0  /* only the all-commodities rows (TOTAL) */
#define TF_HS_LEVEL_UNSET -1 /* the profile's default (see tf_source_new) */

typedef enum tf_encoding {
    TF_ENC_AUTO = 0, /* UTF-8 if the first 4 KiB are valid UTF-8, else GB18030 */
    TF_ENC_UTF8,
    TF_ENC_GBK, /* read as GB18030, its superset */
} tf_encoding_t;
int tf_encoding_parse(const char *s, tf_encoding_t *out); /* utf-8|utf8|gbk|gb18030|auto */

typedef struct tf_source_opts {
    tf_source_kind_t kind;
    int hs_level;        /* TF_HS_LEVEL_TOTAL or 2..10; TF_HS_LEVEL_UNSET: default */
    int64_t release;     /* revision of every record (tf_release_parse); > 0 */
    tf_flow_t flow;      /* GACC without a flow column: TF_FLOW_EXPORT/IMPORT; else UNKNOWN */
    tf_encoding_t encoding;
    const tf_econ_t *econ; /* required; borrowed */
    const tf_fx_t *fx;     /* may be NULL (then non-USD values are rejected); borrowed */
} tf_source_opts_t;

typedef struct tf_source tf_source_t;

/* Checks the options against the profile (a Comtrade run needs an explicit
 * hs_level; a release is required) and makes a profile. Caller frees with
 * tf_source_free(). */
tf_source_t *tf_source_new(const tf_source_opts_t *o, char *errstr, size_t errlen);
void tf_source_free(tf_source_t *s);
/* Changes the revision given to the following records (a watched inbox's
 * files each carry their own release). release > 0. */
void tf_source_set_release(tf_source_t *s, int64_t release);
tf_source_kind_t tf_source_kind(const tf_source_t *s);
tf_encoding_t tf_source_encoding(const tf_source_t *s);

/* The profile's columns: index of a header name (exact match), or -1 for a
 * column the profile does not use (ignored). At most TF_SOURCE_MAXCOL. */
#define TF_SOURCE_MAXCOL 32
int tf_source_col(const tf_source_t *s, const char *name, size_t len);
const char *tf_source_col_name(const tf_source_t *s, int col);
int tf_source_ncols(const tf_source_t *s);
/* After the header: 0, or -1 with the missing column in *column and the
 * reason (a required column is missing) in errstr. present[i] tells whether
 * column i is in the header. For JSON input the check runs per record. */
int tf_source_check_header(const tf_source_t *s, const bool *present, const char **column,
                           char *errstr, size_t errlen);

typedef enum tf_source_status {
    TF_SRC_OK = 0,   /* *out holds a valid record */
    TF_SRC_BAD = 1,  /* rejected: *column and errstr say why */
    TF_SRC_SKIP = 2, /* not for tradeflow (another HS level, a breakdown, a
                      * flow that is not mapped): errstr holds the reason,
                      * without the row's line, for the summary's counts */
} tf_source_status_t;

/* Maps one row: vals[i] is column i's trimmed value, NULL when absent (JSON:
 * missing or null). *column is a column name or "-". */
tf_source_status_t tf_source_build(tf_source_t *s, const char *const *vals, tf_record_t *out,
                                   const char **column, char *errstr, size_t errlen);

/* The record id of a cell: "<tag>:<reporter>:<YYYYMM>:<32 hex digits>", the
 * hex being FNV-1a 128 of the identity string "v1" + US-separated key
 * fields (docs/input-formats.md lists each source's fields). Fits in
 * TF_RECORD_ID_MAX. */
void tf_source_record_id(const char *tag, const char *reporter, int32_t period,
                         const char *const *key, size_t nkey, char *out, size_t outlen);

#endif
