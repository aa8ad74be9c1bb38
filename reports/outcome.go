package reports

// Outcome is how one objective or check came out, as a word and a symbol: every renderer
// shows both, so pass and fail are never carried by colour alone.
type Outcome struct {
	// Class is "pass", "fail" or "unknown", for styling.
	Class  string
	Symbol string
	Word   string
}

// The outcomes.
var (
	outcomePass    = Outcome{Class: "pass", Symbol: "✔", Word: "met"}
	outcomeFail    = Outcome{Class: "fail", Symbol: "✖", Word: "missed"}
	outcomeUnknown = Outcome{Class: "unknown", Symbol: "?", Word: "not judged"}
)

func outcomeOf(passed, inconclusive bool) Outcome {
	switch {
	case inconclusive:
		return outcomeUnknown
	case passed:
		return outcomePass
	default:
		return outcomeFail
	}
}

// Outcome says whether the objective was met, missed or could not be judged.
func (o ObjectiveResult) Outcome() Outcome { return outcomeOf(o.Passed, o.Inconclusive) }

// Outcome says whether the check passed, failed or could not run.
func (c Check) Outcome() Outcome {
	out := outcomeOf(c.Passed, c.Inconclusive)
	switch out {
	case outcomePass:
		out.Word = "passed"
	case outcomeFail:
		out.Word = "failed"
	}
	return out
}
