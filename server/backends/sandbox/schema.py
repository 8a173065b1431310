"""The sandbox's SQLite schema. Bump SEED_VERSION whenever the schema or the generated data change."""

from __future__ import annotations

SEED_VERSION = 3
# The generator's RNG key: kept while new fields come from their own RNG, so existing rows (and counts) stay the same.
DATA_VERSION = 2

TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS profiles (
    pid INTEGER PRIMARY KEY,
    identity TEXT UNIQUE,
    email TEXT,
    name TEXT,
    phone TEXT,
    data TEXT NOT NULL,
    created_ts INTEGER NOT NULL,
    lat REAL,
    lon REAL
);
CREATE TABLE IF NOT EXISTS devices (
    did INTEGER PRIMARY KEY,
    object_id TEXT NOT NULL UNIQUE,
    pid INTEGER NOT NULL,
    platform TEXT,
    os TEXT,
    os_version TEXT,
    app_version TEXT,
    make TEXT,
    model TEXT,
    browser TEXT,
    device_type TEXT,
    push_token TEXT,
    token_type TEXT
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    pid INTEGER NOT NULL,
    did INTEGER,
    name TEXT NOT NULL,
    ts INTEGER NOT NULL,
    day INTEGER NOT NULL,
    props TEXT NOT NULL,
    sid INTEGER NOT NULL DEFAULT 0
);
-- Session properties are few distinct objects: stored once, referenced by events.sid (0 = no session properties).
CREATE TABLE IF NOT EXISTS sessions (sid INTEGER PRIMARY KEY, data TEXT NOT NULL);
-- Custom list segments (the presigned-URL upload flow): the matched profile ids as a JSON array.
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    creator TEXT,
    email TEXT,
    filename TEXT,
    created_ts INTEGER NOT NULL,
    pids TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS campaigns (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    target_mode TEXT NOT NULL,
    status TEXT NOT NULL,
    scheduled_on INTEGER NOT NULL,
    created_ts INTEGER NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0,
    viewed INTEGER NOT NULL DEFAULT 0,
    clicked INTEGER NOT NULL DEFAULT 0,
    delivery TEXT NOT NULL DEFAULT 'one_time',
    labels TEXT NOT NULL DEFAULT '[]',
    devices TEXT NOT NULL DEFAULT '[]',
    payload TEXT NOT NULL DEFAULT '{}'
);
"""

# Created after the bulk insert (faster than maintaining them row by row).
INDEXES = """
CREATE INDEX IF NOT EXISTS profiles_email ON profiles (email);
CREATE INDEX IF NOT EXISTS profiles_phone ON profiles (phone);
CREATE INDEX IF NOT EXISTS devices_pid ON devices (pid);
CREATE INDEX IF NOT EXISTS events_name_day ON events (name, day);
CREATE INDEX IF NOT EXISTS events_pid ON events (pid, name, ts);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE INDEX IF NOT EXISTS campaigns_scheduled ON campaigns (scheduled_on);
"""
