// Package score is pgdrill's judge. From what the harness recorded before the incident (the
// Baseline), what it did (the incident record), what its workload wrote (the ledger) and what the
// servers hold now, it finds how every tenant came back (Verify), measures the drill against its
// objectives (Measure, RPO) and decides the verdict (Judge).
//
// It trusts nothing the accused says: it reads the servers through package truth, in sessions
// the verified data cannot steer, and it does not import package restore, so no strategy's or
// runbook's account of itself (rows written, conflicts met, phases timed) can reach a verdict.
// Times come from the harness's own clock, handed in by the drill that owns the timeline.
//
// Layering: score imports truth, fixtures, incident (the harness's record of its own harm),
// workload (its ledger), backup (its chain checks) and objective; drill imports score; nothing
// here imports drill, restore or reports.
package score
