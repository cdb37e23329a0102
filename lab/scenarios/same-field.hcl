# Two technicians, both offline, set the same field of the same work
# order: tech-b's change is stamped later, tech-a's reaches the office
# last.
name          = "same-field"
description   = "Two technicians edit the same field of one work order while offline; the later-stamped change reaches the office first."
duration      = "4h"
seeds         = [1]
table         = "wo"
records       = 1
resolve_after = "1h" # under manual, a dispatcher keeps one value an hour later

network {
  delay         = "60ms"
  sync_interval = "15m"
}

hub "office" {}
device "tech-a" {}
device "tech-b" {}

event {
  at     = "0s"
  node   = "office"
  action = "write"
  record = "WO-1002"
  fields = { status = "scheduled", start = "09:00" }
}
event {
  at     = "20m"
  node   = "tech-a"
  action = "offline"
}
event {
  at     = "20m"
  node   = "tech-b"
  action = "offline"
}
event {
  at     = "1h"
  node   = "tech-a"
  action = "write"
  record = "WO-1002"
  fields = { status = "done" }
}
event {
  at     = "1h30m"
  node   = "tech-b"
  action = "write"
  record = "WO-1002"
  fields = { status = "parts-needed" }
}
event {
  at     = "2h"
  node   = "tech-b"
  action = "online"
}
event {
  at     = "2h10m"
  node   = "tech-a"
  action = "online"
}
