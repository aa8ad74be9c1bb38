package reports

import (
	"fmt"
	"time"
)

// incidentVerbs say what each built-in incident kind did, as the start of a sentence whose
// object is "N tenants on M shards". Leadership reads these, not kind names.
var incidentVerbs = map[string]string{
	"wrong-id-deletion":     "A cleanup script handed the wrong ids deleted",
	"wrong-id-soft-delete":  "A cleanup script handed the wrong ids marked deleted",
	"purge-not-soft-delete": "A deactivation job that should have marked tenants deleted purged",
	"update-without-where":  "An UPDATE without a WHERE clause overwrote",
	"bad-migration":         "A bad migration damaged",
	"shard-loss":            "Losing a shard took out",
	"ring-rollout":          "An admin script rolled out in rings deleted",
}

// Headline is the drill in one plain sentence, what leadership reads first: what happened,
// whether and how fast the harmed tenants came back against the objective, and whether
// anyone else was harmed. For example: "A cleanup script handed the wrong ids deleted 12
// tenants on 3 shards; all 12 were back in 4 min 12 s against an objective of 15 min; no other
// tenant lost data."
func (r *Report) Headline() string {
	if r.Incident.Kind == "" {
		return r.Verdict.Words() + " before any incident: " + r.Reason
	}
	return r.whatHappened() + "; " + r.howItCameBack() + "; " + r.bystanders() + "."
}

func (r *Report) whatHappened() string {
	if r.Incident.Summary != "" {
		return r.Incident.Summary
	}
	verb, ok := incidentVerbs[r.Incident.Kind]
	if !ok {
		verb = fmt.Sprintf("The %s incident harmed", r.Incident.Kind)
	}
	return fmt.Sprintf("%s %s on %s", verb, Count(int64(len(r.Incident.Affected)), "tenant"),
		Count(int64(r.Incident.Shards()), "shard"))
}

func (r *Report) howItCameBack() string {
	affected := len(r.Incident.Affected)
	complete := 0
	for _, t := range r.Tenants {
		if t.Complete {
			complete++
		}
	}
	switch {
	case r.Verdict == Error || r.Verdict == Aborted:
		return "the drill stopped before the restore could be judged (" + r.Verdict.Words() + ")"
	case !r.Judged() && r.BackupsBroken():
		return "the restore was not attempted: the backups it needs are broken"
	case r.Measures.RTOMS == nil:
		return fmt.Sprintf("%d of %d came back complete, but the restore was never verified", complete, affected)
	}
	took := Words(time.Duration(*r.Measures.RTOMS) * time.Millisecond)
	var s string
	switch {
	case complete == affected && affected == 1:
		s = "it was back in " + took
	case complete == affected:
		s = fmt.Sprintf("all %d were back in %s", affected, took)
	default:
		s = fmt.Sprintf("only %d of %d came back complete, after %s", complete, affected, took)
	}
	if o, ok := r.Objective("rto"); ok {
		s += " against an objective of " + o.Threshold.String()
	}
	return s
}

func (r *Report) bystanders() string {
	if len(r.Collateral) == 0 {
		if !r.Judged() {
			return "harm to other tenants was not checked"
		}
		return "no other tenant lost data"
	}
	return fmt.Sprintf("%s had %s harmed by the restore",
		Count(int64(r.CollateralTenants()), "other tenant"), Count(collateralRows(r), "row"))
}

// Judged reports whether the drill verified the restore: whether its integrity checks ran. A
// drill that broke, was aborted or found its backups broken did not, and figures it never
// measured must read as unknown, not as zero.
func (r *Report) Judged() bool {
	for _, c := range r.Checks {
		if !c.Inconclusive {
			return true
		}
	}
	return false
}

// BackupsBroken reports whether a backup chain check failed.
func (r *Report) BackupsBroken() bool {
	for _, b := range r.Backups {
		if !b.Verified {
			return true
		}
	}
	return false
}

// CollateralTenants counts the distinct bystander tenants harmed.
func (r *Report) CollateralTenants() int {
	seen := map[int64]bool{}
	for _, c := range r.Collateral {
		seen[c.Tenant] = true
	}
	return len(seen)
}

// Objective returns the result of the objective on metric, e.g. "rto", when there is one.
func (r *Report) Objective(metric string) (ObjectiveResult, bool) {
	for _, o := range r.Objectives {
		if o.Metric == metric {
			return o, true
		}
	}
	return ObjectiveResult{}, false
}
