# A device whose clock runs an hour ahead, among devices with ordinary
# clocks, all editing the same few records through the day. Under HLC the
# hub parks the fast device's writes until its own clock is within
# max_clock_offset of their stamps: with replicad's default bound (one
# minute) for an hour; with a bound of two hours they apply at once and
# every clock that sees them moves an hour ahead with them. A plain
# wall-clock last-writer-wins lets the fast device win every race,
# including against writes made after seeing its value.
name           = "clock-ahead"
description    = "One device's clock runs an hour ahead; five devices edit the same few records for eight hours."
duration       = "8h"
seeds          = [1, 2, 3, 4, 5]
records        = 6
field_zipf     = 1.2
record_zipf    = 0.8
max_clock_offset = "${max_offset_minutes}m"

sweep {
  name   = "max_offset_minutes"
  label  = "max clock offset (minutes)"
  values = [1, 120]
}

network {
  delay         = "80ms"
  jitter        = "40ms"
  sync_interval = "5m"
}

hub "office" {}
device "tech" {
  count      = 4
  write_rate = 4
  clock_skew_spread = "2s"
}
device "fast" {
  write_rate = 4
  clock_skew = "1h"
}
