# Offline profiles, read by a hub started with --profiles examples/profiles.hcl
# (or profiles = "..." in its config file). The hub reloads this file when it
# changes (or at once: replicad profile reload); a file that fails to load is
# reported with its position and the previous profiles stay.

# A technician holds today's and future bookings of their own that are not
# completed, the work orders those bookings reference, and the customers of
# those work orders ("related rows only"), plus the whole product catalogue.
profile "technician" {
  table "bookings" {
    # CEL: record fields by name; now, today, id, device.<attribute>,
    # days(n), hours(n). Dates (2026-11-30) and RFC 3339 times are timestamps.
    filter   = "owner == device.user && status != 'completed' && start >= today"
    interval = "5m"  # re-evaluated this often (5m to 24h; default 15m)
    priority = 10    # fetched first in an initial sync
  }
  table "workorders" {
    related  = ["bookings.workorder"]  # ids held in bookings.workorder
    interval = "1h"                    # follows bookings' 5m: the shorter wins
  }
  table "customers" {
    related = ["workorders.customer"]
  }
  table "products" {}                  # the whole table
}

# A dispatcher holds every booking of the week ahead.
profile "dispatcher" {
  table "bookings" {
    filter = "start >= today && start < today + days(7)"
  }
}

# Devices are named by their node id (replicad status on the device).
group "field" {
  profile = "technician"
  devices = ["4f2a9c0d11b3e7a5", "9e01c44b2d7f6a10"]
}

device "4f2a9c0d11b3e7a5" {
  attributes = { user = "alice" }   # device.user in filters
}

device "9e01c44b2d7f6a10" {
  attributes = { user = "bob" }
}

device "c3d2e1f0a9b8c7d6" {
  profile = "dispatcher"
}

# A device with no profile of its own or of its group. Without a default,
# such a device holds every record.
default_profile = "dispatcher"
