/*
 * tf_record.h - the in-memory trade record shared by producers, the codec and
 * consumers.
 *
 * A tf_record_t is plain old data: fixed-size, NUL-terminated string fields,
 * no pointers, so records can be copied, batched and freed with their array.
 * Nothing here allocates.
 *
 * Money is exact: value_usd is held as int64 cents; aggregates use
 * PostgreSQL NUMERIC. Quantities are int64 thousandths. A valid record's
 * value and quantity fit the Avro schemas' decimal(18,2) and decimal(18,3)
 * (TF_VALUE_CENTS_MAX, TF_QUANTITY_MILLI_MAX), checked by
 * tf_record_validate on both sides of Kafka.
 */
#ifndef TF_RECORD_H
#define TF_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TF_RECORD_ID_MAX 64  /* bytes, UTF-8 */
#define TF_CODE_MAX      16  /* economy codes: ISO 3166-1 alpha-3, group codes, WLD */
#define TF_HS_MAX        10  /* HS code: 2..10 digits */
#define TF_UNIT_MAX      16  /* bytes, UTF-8 */
#define TF_SECTOR_MAX    128 /* bytes, UTF-8 */

/* The largest value_usd (9999999999999999.99) and quantity
 * (999999999999999.999) of a valid record: decimal precision 18. */
#define TF_VALUE_CENTS_MAX    999999999999999999LL
#define TF_QUANTITY_MILLI_MAX 999999999999999999LL

/* Periods are calendar months counted from year 0: year*12 + (month-1). */
#define TF_PERIOD_MIN (1900 * 12)
#define TF_PERIOD_MAX (2999 * 12 + 11)

typedef enum tf_dataset {
    TF_DATASET_CUSTOMS = 0,
    TF_DATASET_INVESTMENT = 1,
} tf_dataset_t;

typedef enum tf_flow {
    TF_FLOW_UNKNOWN = 0, /* the Avro enum's default symbol; never valid in a fact */
    TF_FLOW_EXPORT,
    TF_FLOW_IMPORT,
    TF_FLOW_OUTWARD,
    TF_FLOW_INWARD,
    TF_FLOW_TOTAL, /* customs export + import; only in aggregates and alerts */
} tf_flow_t;

/* What a customs message is (CustomsRecord.record_kind, docs/schemas.md):
 * a statistical cell, or the release marker of --complete-release, which
 * says that every cell of its scope (record_id = "<tag>:<reporter>:<YYYYMM>",
 * the prefix of the source profiles' record ids) with a lower revision is
 * withdrawn. A marker has reporter and period of its scope, partner WLD,
 * flow export and value 0 (so that it passes tf_record_validate). */
typedef enum tf_record_kind {
    TF_KIND_FACT = 0,
    TF_KIND_RELEASE = 1,
} tf_record_kind_t;

typedef struct tf_record {
    tf_dataset_t dataset;
    tf_record_kind_t kind; /* TF_KIND_FACT unless a release marker */
    char record_id[TF_RECORD_ID_MAX + 1];
    int64_t revision; /* >= 0; an empty/missing revision is 0 */
    char reporter[TF_CODE_MAX + 1];
    char partner[TF_CODE_MAX + 1];
    tf_flow_t flow;
    int32_t period;      /* see TF_PERIOD_MIN */
    int64_t value_cents; /* >= 0 */
    /* Customs only; empty / false when absent. */
    char hs_code[TF_HS_MAX + 1];
    bool has_quantity;
    int64_t quantity_milli; /* quantity * 1000, >= 0 */
    char unit[TF_UNIT_MAX + 1];
    /* Investment only; empty when absent. */
    char sector[TF_SECTOR_MAX + 1];
} tf_record_t;

/* A ranking-shift alert (see issue 6 / docs). Plain old data. */
typedef enum tf_basis { TF_BASIS_MONTH = 0, TF_BASIS_YTD = 1 } tf_basis_t;
typedef enum tf_level { TF_LEVEL_PARTNER = 0, TF_LEVEL_GROUP = 1 } tf_level_t;
typedef enum tf_alert_kind { TF_ALERT_SHIFT = 0, TF_ALERT_RETRACTION = 1 } tf_alert_kind_t;

typedef struct tf_alert {
    int64_t alert_id; /* unique, assigned by PostgreSQL */
    tf_dataset_t dataset;
    char reporter[TF_CODE_MAX + 1];
    tf_flow_t flow; /* may be TF_FLOW_TOTAL */
    tf_basis_t basis;
    tf_level_t level;
    int32_t period;
    char partner[TF_CODE_MAX + 1];
    int32_t old_rank; /* 0 = NULL (was outside the top N) */
    int32_t new_rank; /* 0 = NULL (left the top N) */
    int64_t value_cents;
    tf_alert_kind_t kind;
    int64_t detected_at_us; /* microseconds since the Unix epoch, UTC */
} tf_alert_t;

const char *tf_dataset_name(tf_dataset_t d);           /* "customs" / "investment" */
int tf_dataset_parse(const char *s, tf_dataset_t *out); /* 0 ok, -1 unknown */
const char *tf_flow_name(tf_flow_t f);                 /* "export", ... "unknown" */
/* Parses a flow name valid for the dataset; 0 ok, -1 otherwise. */
int tf_flow_parse(tf_dataset_t d, const char *s, tf_flow_t *out);
bool tf_flow_valid_for(tf_dataset_t d, tf_flow_t f);

/* "YYYY-MM" (exactly 7 chars, month 01..12, year 1900..2999) -> period.
 * Returns 0, or -1 and fills errstr with the reason. */
int tf_period_parse(const char *s, int32_t *out, char *errstr, size_t errlen);
/* Writes "YYYY-MM" into buf (at least 8 bytes). */
void tf_period_format(int32_t period, char *buf, size_t buflen);
static inline int tf_period_year(int32_t p)
{
    return p / 12;
}
static inline int tf_period_month(int32_t p)
{
    return p % 12 + 1;
}

/* Parses a non-negative decimal with at most `scale` fractional digits
 * ("1234", "1234.5", "1234.56") into an integer scaled by 10^scale.
 * Rejects signs, exponents, NaN/Inf, spaces, over-precision and overflow.
 * Returns 0, or -1 and fills errstr with the reason. */
int tf_decimal_parse(const char *s, int scale, int64_t *out, char *errstr, size_t errlen);
/* Formats v / 10^scale with exactly `scale` decimals. Returns chars written. */
int tf_decimal_format(int64_t v, int scale, char *buf, size_t buflen);

/* Economy code: 2..16 chars of [A-Z0-9], starting with a letter. */
bool tf_code_valid(const char *s);
/* Strict UTF-8 check (no overlongs, no surrogates, no NUL). */
bool tf_utf8_valid(const char *s, size_t len);

/* Checks every field of a record against the domain rules.
 * Returns 0, or -1 with *column set to the offending field's name and errstr
 * filled with the reason. Used by the producer before publishing and by the
 * consumer after decoding (valid Avro can carry invalid values). */
int tf_record_validate(const tf_record_t *r, const char **column, char *errstr, size_t errlen);

#endif
