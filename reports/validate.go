package reports

import (
	"fmt"
	"strings"
)

// ValidationError lists everything wrong with a report at once, so whoever fills the model
// (the drill runner, or a person editing report.json) fixes it in one go.
type ValidationError struct {
	Problems []string
}

// Error writes one problem per line.
func (e *ValidationError) Error() string {
	return "invalid report:\n  " + strings.Join(e.Problems, "\n  ")
}

// Validate checks what renderers rely on: a known schema version and verdict, the ids that
// name the run, and figures that are internally consistent. Its error is a *ValidationError.
func (r *Report) Validate() error {
	var ps []string
	add := func(format string, args ...any) { ps = append(ps, fmt.Sprintf(format, args...)) }
	if r.SchemaVersion != SchemaVersion {
		add("schema_version is %q; want %s", r.SchemaVersion, SchemaVersion)
	}
	if r.RunID == "" {
		add("run_id is empty")
	}
	if r.Scenario.ID == "" {
		add("scenario.id is empty")
	}
	if !r.Verdict.Known() {
		add("verdict %q is not one of %s", r.Verdict, verdictList())
	}
	if r.Reason == "" {
		add("reason is empty; every verdict says why in words")
	}
	if r.Started.IsZero() {
		add("started is not set")
	}
	if r.Finished.Before(r.Started) {
		add("finished (%s) is before started (%s)", r.Finished, r.Started)
	}
	for i, s := range r.Timeline {
		if s.EndMS < s.StartMS {
			add("timeline[%d] %s ends (%d ms) before it starts (%d ms)", i, s.Name, s.EndMS, s.StartMS)
		}
		if s.Shard < -1 {
			add("timeline[%d] %s has shard %d; use -1 for the whole cluster", i, s.Name, s.Shard)
		}
		if s.Kind != KindPhase && s.Kind != KindEvent && s.Kind != KindFault {
			add("timeline[%d] %s has kind %q; want phase or event", i, s.Name, s.Kind)
		}
	}
	for i, o := range r.Objectives {
		if o.Expression == "" {
			add("objectives[%d] has no expression", i)
		}
		if o.Passed && o.Inconclusive {
			add("objectives[%d] %s is both passed and inconclusive", i, o.Expression)
		}
		if o.Passed && o.Measured == nil {
			add("objectives[%d] %s passed without a measured value", i, o.Expression)
		}
	}
	for i, c := range r.Checks {
		if c.Passed && c.Inconclusive {
			add("checks[%d] %s is both passed and inconclusive", i, c.Name)
		}
	}
	if r.Measures.RowsRestored > r.Measures.RowsExpected {
		add("measures: rows_restored %d exceeds rows_expected %d", r.Measures.RowsRestored, r.Measures.RowsExpected)
	}
	if r.Verdict.Passed() { // PASS_WITH_CONDITIONS too: its conditions are within every objective
		for _, o := range r.Objectives {
			if !o.Passed {
				add("verdict %s with objective %s not passed", r.Verdict, o.Expression)
			}
		}
	}
	if r.Verdict == Pass {
		if len(r.Collateral) > 0 {
			add("verdict PASS with collateral: lost data or harmed bystanders always fail")
		}
	}
	if len(ps) > 0 {
		return &ValidationError{Problems: ps}
	}
	return nil
}

func verdictList() string {
	names := make([]string, len(Verdicts()))
	for i, v := range Verdicts() {
		names[i] = string(v)
	}
	return strings.Join(names, ", ")
}
