package score

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/objective"
	"github.com/pgdrill/pgdrill/harness/workload"
)

// Verdict is a drill's outcome, as the judge decides it.
type Verdict string

// The verdicts. A broken harness must never look like a pass, and a failing restore must never
// look like a broken harness, so they are distinct.
const (
	// Pass: every objective was measured and met, and nothing was harmed.
	Pass Verdict = "PASS"
	// PassWithConditions: as Pass, with something a person should look at.
	PassWithConditions Verdict = "PASS_WITH_CONDITIONS"
	// Fail: the restore lost data, harmed bystanders, broke integrity or missed an objective, or
	// the backups it would restore from are broken.
	Fail Verdict = "FAIL"
	// Aborted: interrupted by a signal or a timeout.
	Aborted Verdict = "ABORTED"
	// Error: the harness or its environment broke; says nothing about the restore path.
	Error Verdict = "ERROR"
	// Inconclusive: the drill ran but could not decide.
	Inconclusive Verdict = "INCONCLUSIVE"
)

// Clock is the harness's own account of when things happened, taken by the drill that owns the
// timeline: never what a restore says of itself.
type Clock struct {
	// Incident is when the harness saw the first harm commit: where RTO and RPO count from.
	Incident time.Time
	// Detected is when the incident was noticed; zero when it was not.
	Detected time.Time
	// Verified is when the verification began: the restore's end, as customers see it.
	Verified time.Time
	// Checks is time between Incident and Verified the harness spent on checks of its own (the
	// backup chain) rather than the responders on the restore: left out of RTO.
	Checks time.Duration
	// Phases are the restore's phases as the harness timed them.
	Phases []Phase
}

// Phase is one timed step of a restore on one shard.
type Phase struct {
	Name  string
	Shard int
	Start time.Time
	End   time.Time
}

// Drill is everything the judge weighs about one drill, all of it the harness's own record.
type Drill struct {
	Baseline Baseline
	Ledger   []workload.Entry
	Clock    Clock
	// Chains are the backup chain checks made before the restore; none when the drill did not
	// get to them.
	Chains []backup.ChainReport
	// Findings are what the verification found; nil when the drill did not get to verify.
	Findings *Findings
	// WorkloadExpected says the scenario asked for writes, so a ledger without one acknowledged
	// leaves the bystanders' safety untested.
	WorkloadExpected bool
	// Faults are the chaos the scenario asked for, as the harness observed it.
	Faults []Fault
	// Located is what a blind drill's restore found of the harm, against the truth; nil when
	// the drill was told the incident (or a runbook searched for itself).
	Located *Located
}

// Located is what a blind restore found of the harm, as the harness compared it with the truth.
type Located struct {
	// Victims counts the true victims; Found how many of them the restore found.
	Victims, Found int
	// TargetsExact says every recovery target it found is the true one.
	TargetsExact bool
}

// Fault is one fault of the drill as the harness observed it: a fault that was not seen to take
// effect was not rehearsed, and one not seen healed may have touched the verification, so
// either leaves a drill that would otherwise pass INCONCLUSIVE. What a fault did to the data is
// judged like anything else: by the data.
type Fault struct {
	Description string
	Confirmed   bool
	Healed      bool
	// Problem is why it was not confirmed or healed, in words.
	Problem string
}

// Ending says how the drill ended before it was judged on its data.
type Ending struct {
	// Interrupted is the cause of an interruption (a signal, a timeout); empty when none.
	Interrupted string
	// Restore is the error of a restore that did not complete; nil when it did.
	Restore error
	// Harness is the error of a harness that broke; nil when it did not.
	Harness error
	// Input is the error of a scenario that cannot be drilled as written (a schema Postgres
	// refused, a constraint the synthetic rows cannot keep), found before anything was harmed.
	Input error
}

// Judgement is the judge's decision.
type Judgement struct {
	Measures objective.Measures
	Results  []objective.Result
	Verdict  Verdict
	// Reason says why, in plain words.
	Reason string
	// Problems lists what went wrong, for the "what went wrong" part of reports.
	Problems []string
}

// Judge measures the drill, evaluates its objectives and decides the verdict. The order of the
// cases is the product's promise: an interrupted drill is ABORTED, a broken restore is a FAIL, a
// broken harness is an ERROR, broken backups FAIL whatever else happened, and only a drill that
// ran to the end is judged on its data: broken integrity FAILs whatever the objectives say; lost
// data and collateral FAIL unless the scenario bounds them with an objective (completeness or
// lost_rows, collateral), which then decides, and what it tolerates is a condition; a missed
// objective FAILs; an objective or a row that cannot be judged makes it INCONCLUSIVE; and
// conditions a person should see make a pass PASS_WITH_CONDITIONS.
func Judge(d Drill, objs objective.Objectives, end Ending) Judgement {
	j := Judgement{Measures: d.Measure()}
	j.Results = objs.Evaluate(j.Measures)
	var broken []string
	for _, c := range d.Chains {
		if !c.Whole() {
			broken = append(broken, c.Shard+": "+c.Problem())
		}
	}
	chain := ""
	if len(broken) > 0 {
		chain = "the backups a restore needs are broken: " + strings.Join(broken, "; ")
	}
	switch {
	case end.Interrupted != "":
		j.Verdict, j.Reason = Aborted, "the drill was interrupted ("+end.Interrupted+"); everything it started was torn down"
		return j
	case chain != "" && d.Findings == nil:
		j.Verdict, j.Reason = Fail, chain
		j.Problems = append(j.Problems, chain)
		if end.Restore != nil || end.Harness != nil {
			j.Problems = append(j.Problems, endingErrors(end)...)
		}
		return j
	case end.Restore != nil:
		j.Verdict, j.Reason = Fail, "the restore did not complete: "+end.Restore.Error()
		j.Problems = append(j.Problems, end.Restore.Error())
		return j
	case end.Input != nil:
		j.Verdict, j.Reason = Error, "the scenario cannot be drilled as written, so this drill says nothing about the restore: "+end.Input.Error()
		j.Problems = append(j.Problems, end.Input.Error())
		return j
	case end.Harness != nil:
		j.Verdict, j.Reason = Error, "the harness broke, so this drill says nothing about the restore: "+end.Harness.Error()
		j.Problems = append(j.Problems, end.Harness.Error())
		return j
	case d.Findings == nil:
		j.Verdict, j.Reason = Error, "the drill ended without verifying the restore, a harness bug"
		return j
	}
	failures, doubts, conditions := d.weigh(j.Results)
	if chain != "" {
		failures = append([]string{chain}, failures...)
	}
	j.Problems = append(j.Problems, failures...)
	j.Problems = append(j.Problems, doubts...)
	switch {
	case len(failures) > 0:
		j.Verdict, j.Reason = Fail, strings.Join(failures, "; ")
	case len(doubts) > 0:
		j.Verdict, j.Reason = Inconclusive, strings.Join(doubts, "; ")
	case len(conditions) > 0:
		j.Verdict, j.Reason = PassWithConditions, "every objective was met, with conditions: "+strings.Join(conditions, "; ")
	default:
		j.Verdict, j.Reason = Pass, fmt.Sprintf("all %d affected tenants were restored exactly, every objective was met and no other tenant was touched",
			len(d.Findings.Affected))
	}
	return j
}

// errors lists the ending's errors, for problems.
func endingErrors(end Ending) []string {
	var out []string
	for _, err := range []error{end.Restore, end.Harness} {
		if err != nil {
			out = append(out, err.Error())
		}
	}
	return out
}

// weigh sorts what the verification found into failures, doubts and conditions.
func (d Drill) weigh(results []objective.Result) (failures, doubts, conditions []string) {
	f := d.Findings
	// harm is a failure unless objectives bound the metrics and every one of them passed: then
	// it is tolerated, as a condition.
	harm := func(msg string, metrics ...objective.Metric) {
		bounding := slices.DeleteFunc(slices.Clone(results), func(r objective.Result) bool { return !slices.Contains(metrics, r.Objective.Metric) })
		if len(bounding) > 0 && !slices.ContainsFunc(bounding, func(r objective.Result) bool { return !r.Passed }) {
			conditions = append(conditions, msg+", within the objectives")
			return
		}
		failures = append(failures, msg)
	}
	// Rows lost or wrong are what lost_rows counts, so it may bound them; rows that should not
	// be there (duplicated, resurrected, unexpected) only completeness bounds: a lost_rows
	// objective must not excuse what it does not measure.
	var missing, extra, incomplete, extraTenants int64
	for _, t := range f.Affected {
		if !t.Complete() {
			incomplete++
			missing += t.Lost + t.Wrong
			if more := t.Bad() - t.Lost - t.Wrong; more > 0 {
				extra += more
				extraTenants++
			}
		}
	}
	if missing > 0 {
		harm(fmt.Sprintf("%d row(s) of %d of the %d affected tenants are not as they must be", missing, incomplete, len(f.Affected)),
			objective.Completeness, objective.LostRows)
	}
	if extra > 0 {
		harm(fmt.Sprintf("%d row(s) of %d of the %d affected tenants are not as they must be: there, and they should not be (duplicated, resurrected or unexpected)",
			extra, extraTenants, len(f.Affected)), objective.Completeness)
	}
	if len(f.Collateral) > 0 {
		tenants := map[int64]bool{}
		var rows int64
		for _, h := range f.Collateral {
			tenants[h.Tenant] = true
			rows += h.Rows()
		}
		harm(fmt.Sprintf("%d row(s) of %d unaffected tenant(s) differ from what their own writes say they must hold", rows, len(tenants)),
			objective.Collateral)
	}
	for _, c := range f.Integrity {
		if !c.Passed {
			failures = append(failures, "integrity check "+c.Name+" failed: "+c.Detail)
		}
	}
	for _, res := range results {
		switch {
		case res.Inconclusive:
			doubts = append(doubts, res.Reason)
		case !res.Passed:
			failures = append(failures, res.Reason)
		}
	}
	for _, flt := range d.Faults {
		switch {
		case !flt.Confirmed:
			doubts = append(doubts, fmt.Sprintf("fault %q was not seen to take effect (%s), so the drill did not rehearse it", flt.Description, flt.Problem))
		case !flt.Healed:
			doubts = append(doubts, fmt.Sprintf("fault %q was not seen healed before the verification (%s)", flt.Description, flt.Problem))
		}
	}
	if d.WorkloadExpected && f.Writes == 0 {
		doubts = append(doubts, "the workload acknowledged no write, so whether other tenants kept their writes went untested")
	}
	if f.Unresolved > 0 {
		doubts = append(doubts, fmt.Sprintf("%d row(s) a write of unknown outcome touched differ in a way that cannot be judged", f.Unresolved))
	}
	if f.Excused > 0 {
		conditions = append(conditions, fmt.Sprintf("%d row(s) a write of unknown outcome touched hold one of the states it allows", f.Excused))
	}
	return failures, doubts, conditions
}

// Measure computes every measure the objectives are judged on from the harness's clock, the
// backup chain checks and the findings.
func (d Drill) Measure() objective.Measures {
	m := objective.Measures{}
	c := d.Clock
	if !c.Detected.IsZero() && !c.Incident.IsZero() {
		m[objective.Detect] = objective.Duration(c.Detected.Sub(c.Incident))
	}
	if len(d.Chains) > 0 {
		whole := true
		for _, r := range d.Chains {
			whole = whole && r.Whole()
		}
		m[objective.Backups] = objective.Status(whole)
	}
	if l := d.Located; l != nil && l.Victims > 0 {
		m[objective.Located] = objective.Percent(100 * float64(l.Found) / float64(l.Victims))
		m[objective.Target] = objective.Status(l.TargetsExact)
	}
	span := map[string][2]time.Time{}
	for _, p := range c.Phases {
		s, ok := span[p.Name]
		if !ok || p.Start.Before(s[0]) {
			s[0] = p.Start
		}
		if p.End.After(s[1]) {
			s[1] = p.End
		}
		span[p.Name] = s
	}
	for name, s := range span {
		m[objective.Phase(name)] = objective.Duration(s[1].Sub(s[0]))
	}
	f := d.Findings
	if f == nil {
		return m
	}
	m[objective.RTO] = objective.Duration(c.Verified.Sub(c.Incident) - c.Checks)
	var expected, bad, lost int64
	for _, t := range f.Affected {
		expected += t.Expected
		bad += t.Bad()
		lost += t.Lost + t.Wrong
	}
	if expected > 0 {
		m[objective.Completeness] = objective.Percent(100 * float64(expected-min(bad, expected)) / float64(expected))
	}
	m[objective.LostRows] = objective.Rows(lost)
	var collateral int64
	for _, h := range f.Collateral {
		collateral += h.Rows()
	}
	m[objective.Collateral] = objective.Rows(collateral)
	integrity := true
	for _, ch := range f.Integrity {
		integrity = integrity && ch.Passed
	}
	m[objective.Integrity] = objective.Status(integrity)
	m[objective.RPO] = objective.Duration(RPO(c.Incident, d.Baseline.Taken, f.Predates, f.Diffs, d.Ledger))
	return m
}
