package drill

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pgdrill/pgdrill/reports"
)

// finish evaluates the objectives and decides the verdict. The order of the cases is the
// product's promise: an interrupted drill is ABORTED, a broken restore is a FAIL, a broken harness
// is an ERROR, and only a drill that ran to the end is judged on its data and objectives.
func (r *run) finish(ctx context.Context, err error) {
	o := r.out
	o.Finished = time.Now().UTC()
	o.Results = r.cfg.Scenario.Objectives().Evaluate(o.Measures)
	switch {
	case ctx.Err() != nil:
		o.Verdict, o.Reason = reports.Aborted, "the drill was interrupted ("+context.Cause(ctx).Error()+"); everything it started was torn down"
	case errors.Is(err, errRestore):
		o.Verdict, o.Reason = reports.Fail, "the restore did not complete: "+err.Error()
		o.Problems = append(o.Problems, err.Error())
	case err != nil:
		o.Verdict, o.Reason = reports.Error, "the harness broke, so this drill says nothing about the restore: "+err.Error()
		o.Problems = append(o.Problems, err.Error())
	default:
		o.Verdict, o.Reason = r.judge()
	}
	r.log.Info("drill finished", "verdict", o.Verdict, "reason", o.Reason)
}

// judge decides the verdict of a drill that ran to the end.
func (r *run) judge() (reports.Verdict, string) {
	o := r.out
	var failures, doubts, conditions []string
	var lost, incomplete int64
	for _, t := range o.Affected {
		if !t.Complete() {
			incomplete++
			lost += t.Bad()
		}
	}
	if incomplete > 0 {
		failures = append(failures, fmt.Sprintf("%d row(s) of %d of the %d affected tenants are not as they must be",
			lost, incomplete, len(o.Affected)))
	}
	if n := len(o.Collateral); n > 0 {
		tenants := map[int64]bool{}
		for _, d := range o.Collateral {
			tenants[d.Tenant] = true
		}
		failures = append(failures, fmt.Sprintf("%d unaffected tenant(s) differ from what their own writes say they must hold", len(tenants)))
	}
	for _, c := range o.Integrity {
		if !c.Passed {
			failures = append(failures, "integrity check "+c.Name+" failed: "+c.Detail)
		}
	}
	for _, res := range o.Results {
		switch {
		case res.Inconclusive:
			doubts = append(doubts, res.Reason)
		case !res.Passed:
			failures = append(failures, res.Reason)
		}
	}
	if sc := r.cfg.Scenario.Spec.Workload; sc.Writers > 0 && sc.Rate > 0 && o.Writes == 0 {
		doubts = append(doubts, "the workload acknowledged no write, so whether other tenants kept their writes went untested")
	}
	if n := len(o.Unresolved); n > 0 {
		doubts = append(doubts, fmt.Sprintf("%d tenant table(s) differ only where writes of unknown outcome landed", n))
	}
	if res := o.Restore; res != nil {
		var conflicts, newer int64
		for _, t := range res.Tenants {
			conflicts += t.Conflicts
			newer += t.Newer
		}
		if conflicts > 0 {
			conditions = append(conditions, fmt.Sprintf("the restore met %d row(s) that differed between backup and live", conflicts))
		}
		if newer > 0 {
			conditions = append(conditions, fmt.Sprintf("%d row(s) written after the incident were kept", newer))
		}
	}
	for _, t := range o.Affected {
		if t.Indeterminate > 0 {
			conditions = append(conditions, fmt.Sprintf("tenant %d has %d row(s) whose last write's outcome is unknown", t.ID, t.Indeterminate))
		}
	}
	o.Problems = append(o.Problems, failures...)
	o.Problems = append(o.Problems, doubts...)
	switch {
	case len(failures) > 0:
		return reports.Fail, strings.Join(failures, "; ")
	case len(doubts) > 0:
		return reports.Inconclusive, strings.Join(doubts, "; ")
	case len(conditions) > 0:
		return reports.PassWithConditions, "every objective was met, with conditions: " + strings.Join(conditions, "; ")
	}
	return reports.Pass, fmt.Sprintf("all %d affected tenants were restored exactly, every objective was met and no other tenant was touched",
		len(o.Affected))
}
