package reports

import "slices"

// Verdict is a drill's outcome. The values are a public contract: CI jobs and dashboards
// branch on them, and each maps to one exit code of `pgdrill run`.
type Verdict string

// The verdicts. A broken harness must never look like a pass, and a failing restore must never
// look like a broken harness, so they are distinct.
const (
	// Pass: every objective was measured and met.
	Pass Verdict = "PASS"
	// PassWithConditions: the objectives were met, with something a person should look at.
	PassWithConditions Verdict = "PASS_WITH_CONDITIONS"
	// Fail: the drill ran to the end and missed an objective, lost data or harmed bystanders.
	Fail Verdict = "FAIL"
	// Aborted: interrupted by a signal or a timeout.
	Aborted Verdict = "ABORTED"
	// Error: the harness or its environment broke; says nothing about the restore path.
	Error Verdict = "ERROR"
	// Inconclusive: the drill ran but could not decide.
	Inconclusive Verdict = "INCONCLUSIVE"
)

// Verdicts lists every verdict, best first.
func Verdicts() []Verdict {
	return []Verdict{Pass, PassWithConditions, Fail, Aborted, Error, Inconclusive}
}

// Known reports whether v is one of Verdicts, so a hand-edited or future report.json is
// refused instead of rendered as something it is not.
func (v Verdict) Known() bool { return slices.Contains(Verdicts(), v) }

// Passed reports whether the verdict counts as a pass (with or without conditions).
func (v Verdict) Passed() bool { return v == Pass || v == PassWithConditions }

// Symbol is the verdict's glyph, shown next to its word so that no renderer carries pass or
// fail by colour alone.
func (v Verdict) Symbol() string {
	switch v {
	case Pass:
		return "✔"
	case PassWithConditions:
		return "✔!"
	case Fail:
		return "✖"
	case Inconclusive:
		return "?"
	default:
		return "⚠"
	}
}

// Words is the verdict in plain words, for readers who do not know the constants.
func (v Verdict) Words() string {
	switch v {
	case Pass:
		return "Passed"
	case PassWithConditions:
		return "Passed, with conditions"
	case Fail:
		return "Failed"
	case Aborted:
		return "Aborted"
	case Error:
		return "Harness error"
	default:
		return "Inconclusive"
	}
}
