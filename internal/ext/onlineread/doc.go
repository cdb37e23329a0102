// Package onlineread is the extension of online reads: while connected,
// a device reads records outside its offline profile live from the hub: GET .../records/{id}?online=true
// and GET .../records?online=true are forwarded to the hub's HTTP API
// (Config.HubAPI, else the API address a hub advertises in its gossip
// metadata) and answered with the hub's view, marked "online": true.
// Nothing read online is stored here: the answer goes to the caller only.
// Offline (set offline with POST /v1/connectivity, or the hub's API
// unreachable) such reads fail with 503 and a reason starting "offline:".
// A hub holds every record: it answers online reads from its own store.
package onlineread
