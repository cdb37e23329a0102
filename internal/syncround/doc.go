// Package syncround is a sync asked for (POST /v1/sync, replicad sync):
// a round with every partner, then the wait for the arbitrating hub's
// decisions on this device's earlier writes (Syncer.Run), and the sync
// errors this replica received since a sync last listed them.
package syncround
