// Package drafts is the extension of drafts: field values written with
// ?draft=true are kept on
// this device only (store.PutDraft: no stamp, log, feed or holdings, so no
// sync session, gossip push or feed reader ever sees them), listed,
// published by a commit (an ordinary local write of the draft's fields,
// through the node's write pipeline, whose batch removes the draft) or
// discarded.
//
// Reads with ?draft=true show the record with the draft's values laid
// over its visible fields, and the draft itself under "draft"; a record
// that exists only as a draft shows the draft's values alone. Plain reads,
// lists, the change feed and sync never show drafts.
package drafts
