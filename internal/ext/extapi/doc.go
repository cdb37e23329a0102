// Package extapi declares once what the extensions (internal/ext/*)
// share of the assembly: the route registrar, the answer's error with its
// status, the public API's request parsing (Requests), the current
// replica handed to a route (Current), the replica as the routes that
// read and write records see it (Records), and the node's parts a Host
// is made of (Node, Writer, Decider); and an extension as the agent's
// ordered list holds it (Extension, with the phases it takes part in:
// Configurer, Builder, Starter, Stopper). Every extension may import it; it
// imports no extension, no HTTP machinery of the agent and no agent.
package extapi
