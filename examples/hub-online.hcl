# A hub running the work that only runs online (README, "Duplicate
# detection and workflows"): replicad agent --config examples/hub-online.hcl

role = "hub"

# Key fields: a new contact whose email and org both equal a live
# contact's is flagged as a suspected duplicate (GET /v1/conflicts,
# replicad duplicates), never merged by itself. Flag: --keys contacts=email,org.
table "contacts" {
  keys = ["email", "org"]
}

# POST every accepted change of jobs to a webhook, in the order the hub
# accepted them, at least once; a failing attempt is retried with
# exponential backoff (250ms doubling, at most max_backoff) until a 2xx
# answer, holding back the later changes (max_attempts = N gives up after
# N attempts and records the change as failed).
workflow "dispatch" {
  table        = "jobs"
  webhook      = "http://127.0.0.1:9000/replicad"
  timeout      = "10s"
  max_backoff  = "1m"
  max_attempts = 0
}

# Run a command for every accepted change of any table (the system tables
# _replicad_* excepted), with the change as JSON on stdin; exit status 0
# confirms it.
workflow "audit" {
  command      = ["sh", "-c", "cat >> audit.jsonl && echo >> audit.jsonl"]
  max_attempts = 5
}
