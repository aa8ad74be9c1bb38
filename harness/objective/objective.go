// Package objective parses, validates and evaluates recovery objectives such as `rto<=15m`,
// `rpo<=5s`, `completeness>=100%`, `collateral==0` and `integrity==ok`.
//
// Objectives are written by people, in scenario files and on the command line, and they decide
// whether a drill passes. So they are validated before anything starts, every problem at once,
// and an objective that can never pass (`rto<=0s`, `completeness>=120%`) or never fail
// (`completeness>=0%`) is refused with the reason: a drill that cannot fail proves nothing, and
// one that cannot pass wastes a night of CI.
//
// The grammar, whitespace allowed between the parts:
//
//	objective := metric op threshold
//	metric    := rto | rpo | detect | completeness | collateral | lost_rows | integrity | backups
//	           | located | target                 (blind drills: what the restore found of the harm)
//	           | phase.NAME                       (NAME: locate, archive, provision, replay, extract, merge, verify)
//	op        := <= | < | >= | > | ==
//	threshold := DURATION                         (Go syntax: 500ms, 5s, 15m, 1h30m; a bare 0;
//	                                               to the millisecond from 1s up; at most 2562047h)
//	           | NUMBER%                          (0..100)
//	           | INTEGER                          (a row count, at most 2^53)
//	           | ok | verified | exact             (integrity==ok, backups==verified, target==exact)
//
// Each metric has one unit and the comparisons that make sense for it: durations and row counts
// are bounded from above (<=, <; row counts also ==0), completeness from below (>=, >, ==), and
// integrity can only be required to be ok.
//
// The package is pure: it measures nothing itself. The scorer fills Measures; Evaluate compares.
package objective

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Metric names what an objective constrains. The names are a public contract: they appear in
// scenario files, reports and CI configurations.
type Metric string

// The metrics a drill measures.
const (
	// RTO is the time from the incident to the restore being verified: what customers wait.
	RTO Metric = "rto"
	// RPO is the data loss in time, measured from the ledger: the newest point such that every
	// acknowledged write of the affected tenants at or before it is present after the restore.
	RPO Metric = "rpo"
	// Detect is the time from the incident to its detection (a delay or a probe firing); it is
	// part of RTO, and often most of it.
	Detect Metric = "detect"
	// Completeness is the share of the affected tenants' expected rows that came back exactly
	// (not lost, changed, duplicated, resurrected or unexpected), in percent.
	Completeness Metric = "completeness"
	// Collateral counts rows of unaffected tenants that differ from what their own acknowledged
	// writes say they must hold: the harm the restore did to bystanders.
	Collateral Metric = "collateral"
	// LostRows counts acknowledged rows of the affected tenants that the restore did not bring
	// back.
	LostRows Metric = "lost_rows"
	// Integrity is whether the schema of every database is as it was before the incident (keys,
	// indexes, types, functions) and every tenant is where the directory put it.
	Integrity Metric = "integrity"
	// Backups is whether every base backup verifies and the WAL archive is unbroken from each
	// backup's start through the incident: checked before the restore, so that a drill finds
	// out its backups are broken before a real incident does.
	Backups Metric = "backups"
	// Located is, in a blind drill, the share of the true victims the restore found from the
	// ticket, in percent: a victim it missed stays lost.
	Located Metric = "located"
	// Target is, in a blind drill, whether every recovery target the restore found is the true
	// one (just before each shard's first harm): an earlier one loses writes, a later one keeps
	// harm.
	Target Metric = "target"
)

// phasePrefix starts the per-phase duration metrics, e.g. phase.replay.
const phasePrefix = "phase."

// Phase returns the duration metric of one restore phase, e.g. Phase("replay") is phase.replay,
// so the scorer and the objectives spell phase metrics the same way.
func Phase(name string) Metric { return Metric(phasePrefix + name) }

// Phases lists the restore phases that have a duration metric, in the order they run: the
// phases of DESIGN.md's RTO breakdown other than detection (a metric of its own), archive,
// the wait for the live shard's last WAL to reach the archive that the restore package times,
// and locate, a blind drill's search for the harm.
func Phases() []string {
	return []string{"locate", "archive", "provision", "replay", "extract", "merge", "verify"}
}

// Metrics lists the metrics other than the per-phase ones, for help texts and hints.
func Metrics() []Metric {
	return []Metric{RTO, RPO, Detect, Completeness, Collateral, LostRows, Integrity, Backups, Located, Target}
}

// Unit is what a metric is measured in; a threshold must be in its metric's unit.
type Unit string

// The units.
const (
	// UnitDuration values are durations, held in seconds.
	UnitDuration Unit = "duration"
	// UnitPercent values are percentages, 0..100.
	UnitPercent Unit = "percent"
	// UnitRows values are whole row counts.
	UnitRows Unit = "rows"
	// UnitStatus values are ok (1) or not ok (0).
	UnitStatus Unit = "status"
)

// Op is a comparison.
type Op string

// The comparisons.
const (
	LE Op = "<="
	LT Op = "<"
	GE Op = ">="
	GT Op = ">"
	EQ Op = "=="
)

// holds reports whether "measured op threshold" is true.
func (op Op) holds(measured, threshold float64) bool {
	switch op {
	case LE:
		return measured <= threshold
	case LT:
		return measured < threshold
	case GE:
		return measured >= threshold
	case GT:
		return measured > threshold
	default:
		return measured == threshold
	}
}

// Objective is one parsed, valid objective.
type Objective struct {
	Metric    Metric
	Op        Op
	Threshold Value
}

// String writes the objective in its canonical form, e.g. "rto<=15m"; it parses back to the
// same objective.
func (o Objective) String() string {
	if o.Metric == Backups || o.Metric == Target {
		return string(o.Metric) + string(o.Op) + statusWord(o.Metric)
	}
	return string(o.Metric) + string(o.Op) + o.Threshold.String()
}

// MarshalText writes the objective as its canonical text, so reports show objectives the way
// people write them.
func (o Objective) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText parses an objective written as text.
func (o *Objective) UnmarshalText(text []byte) error {
	p, err := Parse(string(text))
	if err != nil {
		return err
	}
	*o = p
	return nil
}

// Objectives is a drill's list of objectives.
type Objectives []Objective

// Strings returns the objectives' canonical texts.
func (objs Objectives) Strings() []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.String()
	}
	return out
}

// Problem is what is wrong with one objective.
type Problem struct {
	// Index is the objective's position in the list given to ParseAll (0 for Parse), so that
	// callers can point at the line it came from.
	Index int
	// Text is the objective as written.
	Text string
	// Message says what is wrong and, where it can, how to fix it.
	Message string
}

// Error lists every problem of a list of objectives.
type Error struct {
	Problems []Problem
}

// Error writes one problem per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = fmt.Sprintf("objective %q: %s", p.Text, p.Message)
	}
	return strings.Join(lines, "\n")
}

// Parse parses and validates one objective. Its error is an *Error.
func Parse(text string) (Objective, error) {
	o, msg := parse(text)
	if msg != "" {
		return Objective{}, &Error{Problems: []Problem{{Text: text, Message: msg}}}
	}
	return o, nil
}

// ParseAll parses and validates a list of objectives and reports every problem at once as an
// *Error, including a metric constrained twice (the two would be redundant or contradictory).
func ParseAll(texts []string) (Objectives, error) {
	var out Objectives
	var problems []Problem
	first := map[Metric]int{}
	for i, text := range texts {
		o, msg := parse(text)
		if msg == "" {
			if j, dup := first[o.Metric]; dup {
				msg = fmt.Sprintf("%s is already constrained by %q; keep one", o.Metric, texts[j])
			} else {
				first[o.Metric] = i
			}
		}
		if msg != "" {
			problems = append(problems, Problem{Index: i, Text: text, Message: msg})
			continue
		}
		out = append(out, o)
	}
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return out, nil
}

// metricSpec is what a metric accepts.
type metricSpec struct {
	unit Unit
	ops  []Op
	// zeroBound says "<= 0" is a meaningful objective (no data lost, no row harmed), where for
	// elapsed times it can never pass.
	zeroBound bool
}

func specOf(m Metric) (metricSpec, bool) {
	upper := []Op{LE, LT}
	switch {
	case m == RTO || m == Detect:
		return metricSpec{unit: UnitDuration, ops: upper}, true
	case m == RPO:
		return metricSpec{unit: UnitDuration, ops: upper, zeroBound: true}, true
	case m == Completeness || m == Located:
		return metricSpec{unit: UnitPercent, ops: []Op{GE, GT, EQ}}, true
	case m == Collateral || m == LostRows:
		return metricSpec{unit: UnitRows, ops: []Op{LE, LT, EQ}, zeroBound: true}, true
	case m == Integrity || m == Backups || m == Target:
		return metricSpec{unit: UnitStatus, ops: []Op{EQ}}, true
	case strings.HasPrefix(string(m), phasePrefix) && slices.Contains(Phases(), string(m)[len(phasePrefix):]):
		return metricSpec{unit: UnitDuration, ops: upper}, true
	}
	return metricSpec{}, false
}

// parse returns the objective, or a message saying what is wrong with it.
func parse(text string) (Objective, string) {
	s := strings.TrimSpace(text)
	if s == "" {
		return Objective{}, "empty objective; write e.g. rto<=15m"
	}
	i := strings.IndexAny(s, "<>=!")
	if i < 0 {
		return Objective{}, "no comparison; write metric, comparison and threshold, e.g. rto<=15m"
	}
	metric := Metric(strings.TrimSpace(s[:i]))
	rest := s[i:]
	var op Op
	for _, cand := range []Op{LE, GE, EQ, LT, GT} { // two-character operators first
		if strings.HasPrefix(rest, string(cand)) {
			op = cand
			break
		}
	}
	switch {
	case strings.HasPrefix(rest, "!="):
		return Objective{}, "!= is not supported; bound the metric with <=, <, >=, > or =="
	case op == "":
		return Objective{}, fmt.Sprintf("unknown comparison in %q; use <=, <, >=, > or ==", s)
	}
	value := strings.TrimSpace(rest[len(op):])
	if metric == "" {
		return Objective{}, "names no metric; metrics: " + metricList()
	}
	spec, ok := specOf(metric)
	if !ok {
		return Objective{}, unknownMetric(metric)
	}
	if value == "" {
		return Objective{}, fmt.Sprintf("%s%s has no threshold", metric, op)
	}
	if strings.ContainsAny(value, "<>=!") {
		return Objective{}, "more than one comparison; write one objective per bound"
	}
	if !slices.Contains(spec.ops, op) {
		return Objective{}, wrongOp(metric, spec)
	}
	threshold, msg := parseThreshold(metric, spec.unit, value)
	if msg != "" {
		return Objective{}, msg
	}
	o := Objective{Metric: metric, Op: op, Threshold: threshold}
	return o, checkPossible(o, spec)
}

func metricList() string {
	names := make([]string, 0, len(Metrics())+1)
	for _, m := range Metrics() {
		names = append(names, string(m))
	}
	return strings.Join(append(names, phasePrefix+"{"+strings.Join(Phases(), ",")+"}"), ", ")
}

func unknownMetric(m Metric) string {
	if name, ok := strings.CutPrefix(string(m), phasePrefix); ok {
		return fmt.Sprintf("unknown phase %q%s; phases: %s", name, DidYouMean(name, Phases()),
			strings.Join(Phases(), ", "))
	}
	choices := make([]string, 0, len(Metrics())+len(Phases()))
	for _, k := range Metrics() {
		choices = append(choices, string(k))
	}
	for _, p := range Phases() {
		choices = append(choices, string(Phase(p)))
	}
	return fmt.Sprintf("unknown metric %q%s; metrics: %s", m, DidYouMean(string(m), choices), metricList())
}

func wrongOp(m Metric, spec metricSpec) string {
	switch spec.unit {
	case UnitDuration:
		return fmt.Sprintf("%s is a time to stay under: use <= or <, e.g. %s<=%s", m, m, example(m))
	case UnitPercent:
		return fmt.Sprintf("%s is a share to reach: use >=, > or ==, e.g. %s>=100%%", m, m)
	case UnitRows:
		return fmt.Sprintf("%s counts harmed rows, to bound from above: use <=, < or ==0, e.g. %s==0", m, m)
	default:
		return fmt.Sprintf("%s can only be required to be %s: %s==%s", m, statusWord(m), m, statusWord(m))
	}
}

// statusWord is what a status metric is required to be: backups are verified, the recovery
// target exact, integrity ok.
func statusWord(m Metric) string {
	switch m {
	case Backups:
		return "verified"
	case Target:
		return "exact"
	}
	return "ok"
}

func example(m Metric) string {
	if m == RPO {
		return "5s"
	}
	return "15m"
}

// Bounds on thresholds, so that every accepted threshold is written back, by Objective.String,
// as the number it is evaluated against.
const (
	// maxDuration is the longest duration threshold: the whole hours a time.Duration holds. At
	// time.Duration's very limit the threshold's seconds, a float64, round to more than a
	// time.Duration holds, and String wrote a negative duration.
	maxDuration = time.Duration(math.MaxInt64) / time.Hour * time.Hour
	// maxRows is the largest row-count threshold: the largest count a float64 holds exactly.
	maxRows = 1 << 53
)

// parseThreshold reads value in unit, or says why it is not one.
func parseThreshold(m Metric, unit Unit, value string) (Value, string) {
	switch unit {
	case UnitDuration:
		if value == "0" {
			return Duration(0), ""
		}
		if _, err := strconv.ParseFloat(value, 64); err == nil {
			return Value{}, fmt.Sprintf("%s is a duration: give a unit, e.g. %s<=%s", m, m, example(m))
		}
		d, err := time.ParseDuration(value)
		switch {
		case err != nil:
			return Value{}, fmt.Sprintf("%s is a duration, and %q is not one (write e.g. 500ms, 5s, 15m, 1h30m)", m, value)
		case d > maxDuration:
			return Value{}, fmt.Sprintf("%s is at most %s, got %s", m, formatDuration(maxDuration), value)
		}
		// The canonical form writes durations of a second or more to the millisecond
		// (formatDuration): keep the threshold as it writes it, so that the objective shown is
		// the one evaluated.
		if d >= time.Second {
			d = d.Round(time.Millisecond)
		}
		return Duration(d), ""
	case UnitPercent:
		num, ok := strings.CutSuffix(value, "%")
		f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if !ok || err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return Value{}, fmt.Sprintf("%s is a percentage: write e.g. %s>=100%%", m, m)
		}
		return Percent(f), ""
	case UnitRows:
		n, err := strconv.ParseInt(value, 10, 64)
		switch {
		case err != nil:
			return Value{}, fmt.Sprintf("%s counts whole rows: write e.g. %s==0", m, m)
		case n > maxRows:
			return Value{}, fmt.Sprintf("%s is at most %d rows, got %s", m, maxRows, value)
		}
		return Rows(n), ""
	default:
		if value != "ok" && value != statusWord(m) {
			return Value{}, fmt.Sprintf("%s can only be required to be %s: %s==%s", m, statusWord(m), m, statusWord(m))
		}
		return Status(true), ""
	}
}

// checkPossible refuses objectives that can never pass or never fail.
func checkPossible(o Objective, spec metricSpec) string {
	t := o.Threshold.Number
	never := fmt.Sprintf("%s can never pass: ", o)
	switch spec.unit {
	case UnitDuration, UnitRows:
		switch {
		case t < 0:
			return never + fmt.Sprintf("%s is never negative", o.Metric)
		case t == 0 && o.Op == LT:
			return never + fmt.Sprintf("%s is never below 0", o.Metric)
		case t == 0 && !spec.zeroBound:
			return never + "a restore always takes some time"
		case spec.unit == UnitRows && o.Op == EQ && t != 0:
			return fmt.Sprintf("%s passes only when exactly %s rows differ; write %s<=%s", o, o.Threshold, o.Metric, o.Threshold)
		}
	case UnitPercent:
		switch {
		case t > 100 || (t == 100 && o.Op == GT):
			return never + fmt.Sprintf("%s cannot exceed 100%%", o.Metric)
		case t < 0:
			return never + fmt.Sprintf("%s is never negative", o.Metric)
		case t == 0 && o.Op == GE:
			return fmt.Sprintf("%s can never fail, so it checks nothing; write e.g. %s>=100%%", o, o.Metric)
		case o.Op == EQ && t != 100:
			return fmt.Sprintf("%s passes only at exactly %s; write %s>=%s", o, o.Threshold, o.Metric, o.Threshold)
		}
	}
	return ""
}

// DidYouMean returns " (did you mean X?)" for the choice closest to word, or "" when none is
// close. It is shared with scenario validation, so every hint in pgdrill's input errors reads
// the same.
func DidYouMean(word string, choices []string) string {
	best, bestDist := "", math.MaxInt
	for _, c := range choices {
		if d := distance(strings.ToLower(word), c); d < bestDist {
			best, bestDist = c, d
		}
	}
	// A third of the word may be wrong: catches transpositions and slips, not other words.
	if best == "" || bestDist > max(1, len(word)/3) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

// distance is the optimal-string-alignment edit distance: insertions, deletions, substitutions
// and transpositions of neighbours each count 1, so "rot" is one edit from "rto".
func distance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
