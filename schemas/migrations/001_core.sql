-- 001_core.sql - facts, monthly aggregates, materialised rankings, consumer
-- offsets and the group reference table.
--
-- Applied by `tradeflow-aggregate migrate` (and at consumer start) inside one
-- transaction holding an advisory lock, so concurrent starts are safe.
-- Internal schema `tradeflow` may change between versions; BI tools read only
-- the `reporting` views (002_reporting.sql).

CREATE SCHEMA IF NOT EXISTS tradeflow;

-- One row per (dataset, record_id): the highest revision seen so far.
CREATE TABLE tradeflow.facts (
    dataset    text        NOT NULL CHECK (dataset IN ('customs', 'investment')),
    record_id  text        NOT NULL,
    revision   bigint      NOT NULL CHECK (revision >= 0),
    reporter   text        NOT NULL,
    partner    text        NOT NULL,
    flow       text        NOT NULL,
    period     date        NOT NULL CHECK (extract(day FROM period) = 1),
    value_usd  numeric(20,2) NOT NULL CHECK (value_usd >= 0),
    hs_code    text,
    quantity   numeric(23,3),
    unit       text,
    sector     text,
    source     text,                      -- topic/partition/offset it came from
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dataset, record_id)
);

-- Group membership, user-editable. A member belongs to the group for the
-- months valid_from..valid_to (inclusive). After editing it, run
-- `tradeflow-aggregate rebuild` to recompute the group level.
CREATE TABLE tradeflow.group_members (
    group_code text NOT NULL,
    member     text NOT NULL,
    valid_from date NOT NULL DEFAULT DATE '1900-01-01',
    valid_to   date NOT NULL DEFAULT DATE '9999-12-31',
    PRIMARY KEY (group_code, member, valid_from),
    CHECK (valid_from <= valid_to)
);
CREATE INDEX group_members_member ON tradeflow.group_members (member, valid_from);

INSERT INTO tradeflow.group_members (group_code, member)
SELECT 'ASEAN', m FROM unnest(ARRAY['BRN','KHM','IDN','LAO','MYS','MMR','PHL','SGP','THA','VNM']) m;
INSERT INTO tradeflow.group_members (group_code, member)
SELECT 'EU', m FROM unnest(ARRAY['AUT','BEL','BGR','HRV','CYP','CZE','DNK','EST','FIN','FRA',
    'DEU','GRC','HUN','IRL','ITA','LVA','LTU','LUX','MLT','NLD','POL','PRT','ROU','SVK','SVN',
    'ESP','SWE']) m;
-- The United Kingdom left the EU on 2020-01-31: EU28 until January 2020.
INSERT INTO tradeflow.group_members (group_code, member, valid_from, valid_to)
VALUES ('EU', 'GBR', DATE '1900-01-01', DATE '2020-01-31');

-- Monthly values per level ('partner' = codes as they arrived, 'group' =
-- mapped with the membership of that month). Maintained by deltas; `facts`
-- counts the facts behind a row so that a row disappears with its last fact.
-- flow 'total' = export + import (customs).
CREATE TABLE tradeflow.monthly (
    dataset   text NOT NULL,
    reporter  text NOT NULL,
    flow      text NOT NULL,
    level     text NOT NULL,
    period    date NOT NULL,
    partner   text NOT NULL,
    value_usd numeric(22,2) NOT NULL,
    facts     integer NOT NULL,
    PRIMARY KEY (dataset, reporter, flow, level, period, partner)
) WITH (fillfactor = 80);  -- room for HOT updates of the values

-- Rankings, shares and YoY per basis, maintained per touched scope-year.
CREATE TABLE tradeflow.ranking (
    dataset   text NOT NULL,
    reporter  text NOT NULL,
    flow      text NOT NULL,
    level     text NOT NULL,
    basis     text NOT NULL,
    period    date NOT NULL,
    partner   text NOT NULL,
    rank      integer,
    value_usd numeric(22,2) NOT NULL,
    share_pct numeric,
    prev_year_value_usd numeric(22,2),
    yoy_pct   numeric,
    share_change_pp numeric,
    PRIMARY KEY (dataset, reporter, flow, level, basis, period, partner)
) WITH (fillfactor = 80);  -- room for HOT updates of the YoY columns

-- Kafka offsets, written in the same transaction as the changes they caused.
CREATE TABLE tradeflow.consumer_offsets (
    group_id    text    NOT NULL,
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint  NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);

-- Scopes/periods changed since they were last evaluated for alerts
-- (filled by apply_stage, emptied by settle_alerts).
CREATE TABLE tradeflow.settle_pending (
    dataset  text NOT NULL,
    reporter text NOT NULL,
    flow     text NOT NULL,
    level    text NOT NULL,
    period   date NOT NULL,
    PRIMARY KEY (dataset, reporter, flow, level, period)
);

