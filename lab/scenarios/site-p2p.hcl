# A site with no uplink: six devices sync only with each other for a day
# (mesh), walking in and out of range. No hub: arbitrated policies
# (client-wins, server-wins) stay tentative; manual conflicts are resolved
# by the site lead (the first device).
name        = "site-p2p"
description = "Six devices on a site with no uplink sync peer to peer for a day, in and out of range."
duration    = "24h"
seeds       = [1, 2, 3]
topology    = "mesh"
records     = 30
field_zipf  = 1.1
record_zipf = 0.7
delete_fraction = 0.01
resolve_after   = "2h"

network {
  delay         = "20ms"
  jitter        = "20ms"
  bandwidth_kbps = 2000
  loss          = 0.001
  sync_interval = "10m"
}

device "crew" {
  count      = 6
  site       = "site-a"
  write_rate = 3
  offline {
    start    = "1h"
    duration = "2h"
    every    = "6h"
    jitter   = "3h"
  }
}
