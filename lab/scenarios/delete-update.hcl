# The office deletes two work orders while a technician, offline, updates
# them: WO-1 is updated after the delete (the update is stamped later),
# WO-2 before it (the delete is stamped later).
name          = "delete-update"
description   = "The office deletes two work orders while an offline technician updates them, once after the delete and once before."
duration      = "3h"
seeds         = [1]
table         = "wo"
records       = 2
resolve_after = "30m"

network {
  delay         = "60ms"
  sync_interval = "15m"
}

hub "office" {}
device "tech" {}

event {
  at     = "0s"
  node   = "office"
  action = "write"
  record = "WO-1"
  fields = { status = "scheduled", notes = "pump" }
}
event {
  at     = "0s"
  node   = "office"
  action = "write"
  record = "WO-2"
  fields = { status = "scheduled", notes = "valve" }
}
event {
  at     = "5m"
  node   = "tech"
  action = "sync"
}
event {
  at     = "10m"
  node   = "tech"
  action = "offline"
}
event {
  at     = "30m"
  node   = "tech"
  action = "write"
  record = "WO-2"
  fields = { status = "in-progress" }
}
event {
  at     = "40m"
  node   = "office"
  action = "delete"
  record = "WO-1"
}
event {
  at     = "40m"
  node   = "office"
  action = "delete"
  record = "WO-2"
}
event {
  at     = "50m"
  node   = "tech"
  action = "write"
  record = "WO-1"
  fields = { status = "in-progress" }
}
event {
  at     = "1h30m"
  node   = "tech"
  action = "online"
}
