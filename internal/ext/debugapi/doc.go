// Package debugapi is the extension serving, FOR TESTING ONLY, the debug
// endpoints of the fault-testing harness
// (test/e2e/faults_test.go). They exist only when the agent runs with the
// environment variable REPLICAD_TESTING_DEBUG_API=1 (Config.DebugAPI); otherwise they are
// not registered and answer 404 like any unknown path. They expose
// replication internals (dots, causal contexts, the change log) that the
// public API keeps to itself, so that a checker can judge every
// acknowledged write:
//
//	GET    /v1/debug/digest                       state digest of every table, parked and queued counts, the HLC
//	GET    /v1/debug/dump                         every record's full state, every write in the change log, the tombstone horizon
//	PUT    /v1/debug/tables/{table}/records/{id}  as the public PUT, answering with the write's dot, stamp and context
//	DELETE /v1/debug/tables/{table}/records/{id}  as the public DELETE, likewise
package debugapi
