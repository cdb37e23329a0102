# Sample configuration of `replicad agent`: every key, with its default.
# Use it with `replicad agent --config examples/replicad.hcl`; any flag
# given on the command line overrides the key of the same name (dashes for
# underscores: --data-dir overrides data_dir). Unknown keys and bad values
# are errors naming the file, line and column.

# Where the store (Pebble, in <data_dir>/store) and the lock file
# (<data_dir>/replicad.lock) live. A second agent on the same directory is
# refused. Flag: --data-dir.
data_dir = "./replicad-data"

# "device" (a field device; default) or "hub" (the office: a full replica
# that devices dial). Flag: --role.
role = "device"

# The HTTP API (/v1), the status page (/) and Prometheus metrics
# (/metrics). Flag: --api-addr.
api_addr = "127.0.0.1:7400"

# Where sync sessions are accepted (HOST:PORT). Flag: --sync-addr.
sync_addr = "127.0.0.1:7401"

# Gossip (hashicorp/memberlist) bind address. Unset: off for a device
# unless `join` is set (then the sync host on a free port); a hub gossips on
# its sync host, port 7402. "off" disables gossip. Flag: --gossip-addr.
# gossip_addr = "127.0.0.1:7402"

# Gossip timings: "lan" (default) or "local" (fast, for loopback tests).
# Flag: --gossip-profile.
gossip_profile = "lan"

# Hub sync addresses this node dials (devices list their hubs here).
# Flag: --hub ADDR, repeatable.
hub = []
# hub = ["10.0.0.5:7401"]

# Gossip addresses of members to join (devices on one LAN, hub clusters).
# Flag: --join ADDR, repeatable.
join = []

# Conflict policy per table: lww (default), client-wins, server-wins or
# manual. Set on the hubs, which publish them to every replica (system
# table _replicad_policy); the arbitrating hub decides client-wins and
# server-wins tables and logs what was overridden or rejected as sync
# errors; manual tables list concurrent values as conflicts.
# Flag: --policy TABLE=POLICY, repeatable.
policy = {
  # work_orders = "manual"
}

# On a hub: secondary indexes and views, published to every replica
# (system tables _replicad_index and _replicad_view). Every replica builds
# the indexes in the background; queries comparing an index's leading
# fields for equality (or ordered by them) use it. A view is a named
# query; device.* in its where clause reads the asking device's
# attributes (its offline profile's). A declaration removed here is
# removed everywhere at the hub's next start.
# Flag: --index TABLE=FIELD[,FIELD...] (named by its fields joined by _).
# table "bookings" {
#   index "owner_start" { fields = ["owner", "start"] }
# }
# view "my_open_bookings" {
#   table = "bookings"
#   where = "owner == device.user && status != 'completed'"
#   order = ["start"]
# }

# Cluster id: peers of another cluster are refused, and a store created for
# another cluster is not opened. Flag: --cluster-id.
cluster_id = "replicad"

# Log level: trace, debug, info, warn, error or off. Flag: --log-level.
log_level = "info"

# Log JSON lines instead of text. Flag: --log-json.
log_json = false

# On a hub: do not arbitrate client-wins and server-wins tables. In a hub
# cluster exactly one hub arbitrates; set this on the others. While the
# arbitrating hub is away, those tables' changes stay tentative ("pending")
# and nothing is lost. Flag: --no-arbiter.
no_arbiter = false

# A remote write stamped further ahead of this node's clock than this is
# parked (not applied) until it is within bounds. Flag: --max-clock-offset.
max_clock_offset = "1m0s"

# FOR TESTING ONLY: skew this node's physical clock (e.g. "2m", "-30s").
# Flag: --clock-offset.
clock_offset = "0s"

# How often every partner is synced (local writes are also pushed at once
# when online). Flag: --pull-interval.
pull_interval = "1m0s"

# Concurrent sync sessions, in and out; 0 means the role's default (64 on
# a hub, whose whole fleet may sync at once; 16 on a device). Sessions
# beyond it wait up to 2 s for a slot, then are refused with a retry
# delay. Flag: --max-sessions.
max_sessions = 0

# Watch connections served at once; 0 means the role's default (1024 on a
# hub, at most sync_max_conns less max_sessions and 16; none on a device).
# They count in sync_max_conns. A device that dials hubs (hubs) keeps one open
# with each, on the hub's sync address and with the same TLS and
# handshake, to hear of new writes within moments instead of at the next
# pull; they hold no session slot. Flag: --max-watchers.
max_watchers = 0

# Live queries and views (watch=true on GET /v1/tables/{t}/records and
# /v1/views/{name}: event streams and long polls) the API serves at once;
# more are answered 503. 0 means 256. Flag: --max-live-queries.
max_live_queries = 0

# Largest API request body in bytes; larger requests get 413 and store
# nothing. Flag: --max-body-bytes.
max_body_bytes = 1048576

# The hub's HTTP API (HOST:PORT, or an http(s):// URL) that online reads
# (?online=true, `replicad get --online`) are forwarded to. Empty: the API
# address a hub advertises in its gossip metadata, if gossip is on.
# Flag: --hub-api.
hub_api = ""

# A file holding the bearer token of the hub's API, when it needs one
# (the hub's <data_dir>/api-token). Flag: --hub-api-token-file.
# hub_api_token_file = "hub-api-token"

# --- Security (README, "Security") ---

# The API's bearer token: "auto" requires it when api_addr is not on
# loopback, "token" always. It is generated on first start in
# <data_dir>/api-token (mode 0600); clients send "Authorization: Bearer
# TOKEN" (the CLI reads $REPLICAD_TOKEN or $REPLICAD_TOKEN_FILE).
# Flag: --api-auth.
api_auth = "auto"

# Further Host names the API answers (localhost, loopback addresses and
# its own address always are): a name clients use to reach an API off
# loopback. Other names get 421 (what a DNS-rebinding page sends).
# Flag: --api-host (repeatable).
# api_host = ["hub.example.com"]

# Web origins allowed to call the API cross-site, state changes included
# (others' POST/PUT/DELETE are refused with 403). Flag: --api-cors-origin.
# api_cors_origin = ["https://dispatch.example.com"]

# Connections open at once on the API and the sync listener; more are
# closed at once. 0: a quarter of the descriptor limit, 16 to 1024.
# Flags: --api-max-conns, --sync-max-conns.
# api_max_conns  = 0
# sync_max_conns = 0

# The API's timeouts: reading a request (headers within 10 s), writing
# an answer (the change feed's long poll gets its poll timeout more; its
# event stream and POST /v1/sync have no total bound, each stream write
# this one), a keep-alive connection idle between requests.
# Flags: --api-read-timeout, --api-write-timeout, --api-idle-timeout.
# api_read_timeout  = "1m0s"
# api_write_timeout = "1m0s"
# api_idle_timeout  = "1m0s"

# Remote writes parked (stamped beyond max_clock_offset) per origin;
# further ones are refused with a sync error (their origin keeps them and
# offers them again). Flag: --max-parked.
# max_parked = 1000

# Mutual TLS for sync streams (and for the API when it is not on
# loopback): the cluster CA, this node's certificate and key, made with
# `replicad tls ca create` and `replicad tls cert create NAME`. All three
# or none. Flags: --tls-ca, --tls-cert, --tls-key.
# tls_ca   = "pki/ca.crt"
# tls_cert = "pki/hub.crt"
# tls_key  = "pki/hub.key"

# A sync_addr off loopback (another interface, 0.0.0.0) needs the three
# keys above: without them the agent refuses to start, unless told
# insecure = true, and then anyone who reaches the sync port can claim to
# be any node (it says so at start, WARN, and in status). Flag: --insecure.
# insecure = false

# Revoked certificate serials, one per line; re-read when it changes (no
# restart). Flag: --tls-revoked.
# tls_revoked = "pki/revoked.txt"

# With TLS, the writes taken from a device peer: "own" (only that
# device's own writes, each within its signed grant) or "granted" (any
# origin's writes, each within its origin's grant; a compromised device
# can then forge writes in another's name within that one's grant).
# Flag: --peer-relay.
# peer_relay = "own"

# On a hub with TLS and permission blocks: how long the signed grants of
# its rules (published to every node) are valid; re-signed at half of
# it. Flag: --grant-validity.
# grant_validity = "24h"

# Gossip encryption: a keyring file (`replicad tls gossip-key create
# FILE`), base64 keys, the first encrypts. POST /v1/gossip/keys rotates
# keys and rewrites it. Flag: --gossip-keyring.
# gossip_keyring = "gossip.keyring"

# Encryption at rest of the store's values (AES-256-GCM): the key comes
# from at most one source. A file holding 32 raw bytes or 64 hex
# characters (`openssl rand -hex 32`), mode 0600; an environment variable
# (64 hex characters, removed from the agent's environment once read); or
# a command whose output is the key (/bin/sh -c, once at start, 30 s). A
# plain store is migrated at start; an encrypted store does not open
# without its key. Flags: --encryption-key-file, --encryption-key-env,
# --encryption-key-command.
# encryption_key_file    = "/etc/replicad/store.key"
# encryption_key_env     = "REPLICAD_STORE_KEY"
# encryption_key_command = "pass show replicad/store"
