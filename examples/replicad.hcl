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
# manual. Validated, recorded and reported in status; NOT applied yet (the
# policy layer lands later; every table merges as lww until then).
# Flag: --policy TABLE=POLICY, repeatable.
policy = {
  # work_orders = "manual"
}

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

# Largest API request body in bytes; larger requests get 413 and store
# nothing. Flag: --max-body-bytes.
max_body_bytes = 1048576
