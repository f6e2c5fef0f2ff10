/*
 * alerts_fixture.h - the alert of the brief's story for the unit tests of
 * the alert modules: ASEAN 2nd -> 1st of China's partners (total trade, YTD,
 * group level) in Jan-Nov 2020, US$609.58 bn, alert 21.
 */
#ifndef TF_ALERTS_FIXTURE_H
#define TF_ALERTS_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "tf_alerts_feed.h"

static inline tf_alert_row_t asean(void)
{
    tf_alert_row_t r;
    memset(&r, 0, sizeof(r));
    r.a.alert_id = 21;
    r.a.dataset = TF_DATASET_CUSTOMS;
    snprintf(r.a.reporter, sizeof(r.a.reporter), "CHN");
    snprintf(r.a.partner, sizeof(r.a.partner), "ASEAN");
    r.a.flow = TF_FLOW_TOTAL;
    r.a.basis = TF_BASIS_YTD;
    r.a.level = TF_LEVEL_GROUP;
    r.a.period = 2020 * 12 + 10;
    r.a.old_rank = 2;
    r.a.new_rank = 1;
    r.a.value_cents = 60958000000000LL;
    r.a.kind = TF_ALERT_SHIFT;
    r.a.detected_at_us = 1606780800123456LL; /* 2020-12-01T00:00:00.123456Z */
    r.has_value = true;
    return r;
}

#endif
