// Package profiles is the extension of a hub's offline profiles: it loads
// the profiles file (--profiles), reloads it when it changes (a file that
// fails to load is reported and the previous profiles stay), says what
// the hub assigns each device (replication.Local.Assign, which the
// assembly narrows to the device's read limit), and serves /v1/profiles,
// its preview and reload.
package profiles
