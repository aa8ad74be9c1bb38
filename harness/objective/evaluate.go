package objective

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Value is a measured value or a threshold, in its unit.
type Value struct {
	Unit Unit `json:"unit"`
	// Number is seconds for durations, 0..100 for percentages, a count for rows, and 1 (ok) or
	// 0 (not ok) for a status: one comparable number whatever the unit.
	Number float64 `json:"value"`
}

// Duration is a duration Value.
func Duration(d time.Duration) Value { return Value{Unit: UnitDuration, Number: d.Seconds()} }

// Percent is a percentage Value, 0..100.
func Percent(p float64) Value { return Value{Unit: UnitPercent, Number: p} }

// Rows is a row-count Value.
func Rows(n int64) Value { return Value{Unit: UnitRows, Number: float64(n)} }

// Status is an ok / not ok Value.
func Status(ok bool) Value {
	if ok {
		return Value{Unit: UnitStatus, Number: 1}
	}
	return Value{Unit: UnitStatus}
}

// String writes the value the way objectives are written: 15m, 1m30.5s, 99.5%, 3, ok.
func (v Value) String() string {
	switch v.Unit {
	case UnitDuration:
		return formatDuration(time.Duration(math.Round(v.Number * float64(time.Second))))
	case UnitPercent:
		return strconv.FormatFloat(v.Number, 'f', -1, 64) + "%"
	case UnitStatus:
		if v.Number == 1 {
			return "ok"
		}
		return "not ok"
	default:
		return strconv.FormatFloat(v.Number, 'f', -1, 64)
	}
}

// formatDuration is time.Duration's String without the zero units it appends ("15m", not
// "15m0s"), rounded to the millisecond: what a person would write in an objective.
func formatDuration(d time.Duration) string {
	if d >= time.Second || d <= -time.Second {
		d = d.Round(time.Millisecond)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Measures are what a drill measured, by metric. A metric missing from Measures was not
// measured, and an objective on it is inconclusive: never a pass.
type Measures map[Metric]Value

// Result is the verdict on one objective.
type Result struct {
	// Objective is the objective judged; it marshals as its text, e.g. "rto<=15m".
	Objective Objective `json:"objective"`
	// Passed is true only when the metric was measured and meets the threshold.
	Passed bool `json:"passed"`
	// Inconclusive is true when the metric was not measured (or measured in another unit):
	// the objective neither passed nor failed, and a drill with one cannot PASS.
	Inconclusive bool `json:"inconclusive,omitempty"`
	// Measured is the measured value; nil when the metric was not measured.
	Measured *Value `json:"measured,omitempty"`
	// Threshold is the objective's threshold.
	Threshold Value `json:"threshold"`
	// Reason says in plain words why the objective passed, failed or could not be judged.
	Reason string `json:"reason"`
}

// Evaluate judges every objective against the measures, in order.
func (objs Objectives) Evaluate(measured Measures) []Result {
	out := make([]Result, len(objs))
	for i, o := range objs {
		out[i] = o.Evaluate(measured)
	}
	return out
}

// Evaluate judges one objective against the measures.
func (o Objective) Evaluate(measured Measures) Result {
	r := Result{Objective: o, Threshold: o.Threshold}
	m, ok := measured[o.Metric]
	switch {
	case !ok:
		r.Inconclusive = true
		r.Reason = fmt.Sprintf("%s was not measured, so %s cannot pass", o.Metric, o)
		return r
	case m.Unit != o.Threshold.Unit:
		r.Inconclusive = true
		r.Reason = fmt.Sprintf("%s was measured in %s, not %s (a harness bug), so %s cannot pass",
			o.Metric, m.Unit, o.Threshold.Unit, o)
		return r
	}
	r.Measured = &m
	r.Passed = o.Op.holds(m.Number, o.Threshold.Number)
	r.Reason = reason(o, m, r.Passed)
	return r
}

// reason says in plain words how the measured value compares with the objective.
func reason(o Objective, m Value, passed bool) string {
	switch o.Metric {
	case Integrity:
		if passed {
			return "integrity checks passed: the schema is as it was, and every tenant is where the directory puts it"
		}
		return "integrity checks failed: the schema differs from before the incident, or a tenant is not where the directory puts it"
	case Backups:
		if passed {
			return "every base backup verified and the WAL archive is unbroken through the incident"
		}
		return "the backups are broken: a base backup does not verify or the WAL archive has a gap"
	case Target:
		if passed {
			return "every recovery target the restore located is the true one"
		}
		return "a recovery target the restore located is not the true one: too early loses writes, too late keeps harm"
	}
	measured := m.String()
	if o.Threshold.Unit == UnitRows {
		measured += " rows"
	}
	if passed {
		verb := map[Op]string{LE: "within", LT: "under", GE: "meeting", GT: "above", EQ: "meeting"}[o.Op]
		return fmt.Sprintf("%s was %s, %s the objective %s", o.Metric, measured, verb, o)
	}
	verb := map[Op]string{LE: "over", LT: "not under", GE: "below", GT: "not above", EQ: "not meeting"}[o.Op]
	msg := fmt.Sprintf("%s was %s, %s the objective %s", o.Metric, measured, verb, o)
	if o.Threshold.Unit == UnitDuration && (o.Op == LE || o.Op == LT) {
		over := Duration(time.Duration((m.Number - o.Threshold.Number) * float64(time.Second)))
		msg += " by " + over.String()
	}
	return msg
}
