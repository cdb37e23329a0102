# A van goes offline for up to a week while the rest of the team keeps
# working on the same records; it comes back at the end of the workload,
# over a GSM data link (9.6 kbit/s), with notes of about 200 bytes.
# The sweep shows how convergence grows with the time away: what the van
# must send and receive grows, and the hub's decisions about its changes
# reach the others at their next pull.
name        = "offline-week"
description = "A van is offline for 1 hour up to a week while three technicians keep editing; it returns over a 9.6 kbit/s link."
duration    = "${offline_hours + 1}h"
seeds       = [1, 2, 3]
records     = 20
field_zipf  = 1.1
record_zipf = 0.8
value_bytes = 200
resolve_after = "5m" # a dispatcher picks among conflicting values promptly

sweep {
  name   = "offline_hours"
  label  = "hours offline"
  values = [1, 24, 72, 168]
}

network {
  delay          = "150ms"
  jitter         = "100ms"
  bandwidth_kbps = 9.6
  sync_interval  = "2m"
}

hub "office" {}
device "tech" {
  count      = 3
  write_rate = 2
}
device "van" {
  write_rate = 2
  offline {
    start    = "1h"
    duration = "${offline_hours}h"
  }
}
