# The seed's work order (shared/seeds): a technician, offline, moves the
# work order's Start Time while the dispatcher at the office moves its End
# Time; later both move Start Time, the dispatcher's change stamped later
# and the technician's reaching the office last. The same steps as
# replication/policy_test.go TestPoliciesWorkOrder and test/e2e's policy
# tests, so the lab's outcome per policy can be checked against the
# daemon's.
name        = "work-order"
description = "The seed's work order: Start Time edited offline on a technician's device, End Time at the office; then both edit Start Time."
duration    = "45m"
seeds       = [1]
table       = "wo"
records     = 1
# A person does not resolve here: the conflict stays shown, as in the
# daemon's test.
resolve_after = "never"

network {
  delay         = "40ms"
  sync_interval = "0" # only the scripted syncs
}

hub "office" {}
device "tech" {}

event {
  at     = "0s"
  node   = "office"
  action = "write"
  record = "WO-1001"
  fields = { start = "08:00", end = "10:00" }
}
event {
  at     = "1m"
  node   = "tech"
  action = "sync"
}
event {
  at     = "2m"
  node   = "tech"
  action = "offline"
}
event {
  at     = "10m"
  node   = "tech"
  action = "write"
  record = "WO-1001"
  fields = { start = "09:00" }
}
event {
  at     = "11m"
  node   = "office"
  action = "write"
  record = "WO-1001"
  fields = { end = "12:00" }
}
event {
  at     = "20m"
  node   = "tech"
  action = "online" # syncs at once
}
event {
  at     = "21m"
  node   = "tech"
  action = "sync" # brings back the office's decisions
}
event {
  at     = "22m"
  node   = "office"
  action = "snapshot"
  label  = "different-fields"
}
event {
  at     = "22m"
  node   = "tech"
  action = "snapshot"
  label  = "different-fields"
}
event {
  at     = "30m"
  node   = "tech"
  action = "offline"
}
event {
  at     = "31m"
  node   = "tech"
  action = "write"
  record = "WO-1001"
  fields = { start = "10:00" }
}
event {
  at     = "35m"
  node   = "office"
  action = "write"
  record = "WO-1001"
  fields = { start = "07:30" }
}
event {
  at     = "40m"
  node   = "tech"
  action = "online"
}
event {
  at     = "41m"
  node   = "tech"
  action = "sync"
}
event {
  at     = "42m"
  node   = "office"
  action = "snapshot"
  label  = "same-field"
}
event {
  at     = "42m"
  node   = "tech"
  action = "snapshot"
  label  = "same-field"
}
