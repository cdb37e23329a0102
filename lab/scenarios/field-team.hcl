# The default scenario: a field team of twelve across three crews, a day
# of work on forty work orders with hot fields, offline some hours a day
# (the issue's question: "how many updates does table-level server-wins
# lose, compared with field-level last-writer-wins, for a field team that
# is offline four hours a day?").
name        = "field-team"
description = "Twelve technicians in three crews edit forty work orders for a day, offline 0 to 8 hours of it."
duration    = "24h"
seeds       = [1, 2, 3]
records     = 40
field_zipf  = 1.1
record_zipf = 0.8
delete_fraction = 0.01

sweep {
  name   = "offline_hours"
  label  = "hours offline per day"
  values = [0, 2, 4, 8]
}

network {
  delay         = "80ms"
  jitter        = "40ms"
  loss          = 0.002
  sync_interval = "5m"
}

hub "office" {}
device "north" {
  count      = 4
  write_rate = 4
  clock_skew_spread = "500ms"
  offline {
    start    = "2h"
    duration = "${offline_hours}h"
    every    = "24h"
    jitter   = "4h"
  }
}
device "south" {
  count      = 4
  write_rate = 4
  clock_skew_spread = "500ms"
  offline {
    start    = "6h"
    duration = "${offline_hours}h"
    every    = "24h"
    jitter   = "4h"
  }
}
device "east" {
  count      = 4
  write_rate = 4
  clock_skew_spread = "500ms"
  offline {
    start    = "10h"
    duration = "${offline_hours}h"
    every    = "24h"
    jitter   = "4h"
  }
}
