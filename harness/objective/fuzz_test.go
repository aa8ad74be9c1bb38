package objective_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pgdrill/pgdrill/harness/objective"
)

// FuzzObjective feeds arbitrary text to Parse. Objectives are written by people and decide
// whether a drill passes, so every text must end in an objective or in an error a person can
// act on, never in a panic:
//
//   - a refused text gets an *objective.Error with exactly one problem, which quotes the text
//     as written and says, on one line, what is wrong;
//   - an accepted objective constrains a known metric, and its canonical String() parses back
//     to the same objective (reports and `pgdrill scenarios show` write objectives that way);
//   - ParseAll agrees with Parse, and refuses the same metric constrained twice.
//
// testdata/fuzz/FuzzObjective holds the inputs that once broke one of these.
func FuzzObjective(f *testing.F) {
	for _, seed := range []string{
		"rto<=15m", "rpo<=5s", "completeness>=99.5%", "collateral==0", "integrity==ok",
		"backups==verified", "detect<90s", "lost_rows<=10", "phase.replay<=2m", " rpo <= 0 ",
		"completeness==100%", "rto<=1h0m", "backups==ok", "rto<=1.5h", "rpo<=+5s",
		"rto<=2562047h", "lost_rows<=9007199254740992", "completeness>=5e-324%",
		"completeness>=0x1.8p6%", "lost_rows<=-0", "rpo<=0.9999999s",
		// Refused: malformed, misspelt, impossible or pointless.
		"", "rto", "rto<=", "<=15m", "rto=<15m", "rto!=5m", "rto<=5m<=6m", "rot<=1h",
		"phase.replya<=2m", "rto<=15", "rto<=0s", "rpo<0", "rto<=-5m", "completeness>=120%",
		"completeness>100%", "completeness>=0%", "completeness==99%", "completeness>=NaN%",
		"completeness>=Inf%", "completeness>=99.5", "collateral==1", "collateral<=1.5",
		"integrity==bad", "integrity>=ok", "backups==ok!", "rto<=15m\nrpo<=5s", "rto<=\xff",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		o, err := objective.Parse(text)
		if err != nil {
			checkRefusal(t, text, err)
			if _, all := objective.ParseAll([]string{text}); all == nil || all.Error() != err.Error() {
				t.Errorf("ParseAll says %v where Parse says %v", all, err)
			}
			return
		}
		if o.Metric == "" || !slices.Contains(objective.Metrics(), o.Metric) &&
			!slices.ContainsFunc(objective.Phases(), func(p string) bool { return objective.Phase(p) == o.Metric }) {
			t.Errorf("%q accepted with unknown metric %q", text, o.Metric)
		}
		canonical := o.String()
		again, err := objective.Parse(canonical)
		if err != nil {
			t.Fatalf("%q is accepted, but its canonical form %q is refused: %v", text, canonical, err)
		}
		if !reflect.DeepEqual(again, o) {
			t.Fatalf("%q parses to %#v, but its canonical form %q parses to %#v", text, o, canonical, again)
		}
		var unmarshalled objective.Objective
		if err := unmarshalled.UnmarshalText([]byte(canonical)); err != nil || !reflect.DeepEqual(unmarshalled, o) {
			t.Errorf("UnmarshalText(%q) = %#v, %v; want %#v", canonical, unmarshalled, err, o)
		}
		objs, err := objective.ParseAll([]string{text})
		if err != nil || !reflect.DeepEqual(objs, objective.Objectives{o}) {
			t.Errorf("ParseAll([%q]) = %v, %v; want [%v]", text, objs, err, o)
		}
		_, err = objective.ParseAll([]string{text, canonical})
		var oe *objective.Error
		if !errors.As(err, &oe) || len(oe.Problems) != 1 || oe.Problems[0].Index != 1 ||
			!strings.Contains(oe.Problems[0].Message, "already constrained") {
			t.Errorf("ParseAll([%q, %q]) does not refuse the metric constrained twice: %v", text, canonical, err)
		}
	})
}

// checkRefusal checks that the error refusing text is an *objective.Error of one problem that
// names the text and says what is wrong with it, on one line.
func checkRefusal(t *testing.T, text string, err error) {
	t.Helper()
	var oe *objective.Error
	if !errors.As(err, &oe) {
		t.Fatalf("error refusing %q is a %T, not an *objective.Error: %v", text, err, err)
	}
	if len(oe.Problems) != 1 {
		t.Fatalf("refusing %q gives %d problems, want 1: %v", text, len(oe.Problems), err)
	}
	p := oe.Problems[0]
	if p.Index != 0 || p.Text != text {
		t.Errorf("problem names objective %d %q, want 0 %q", p.Index, p.Text, text)
	}
	if strings.TrimSpace(p.Message) == "" || strings.Contains(p.Message, "\n") {
		t.Errorf("refusing %q says %q: want what is wrong, on one line", text, p.Message)
	}
	if want := fmt.Sprintf("objective %q: %s", text, p.Message); err.Error() != want {
		t.Errorf("error is %q, want %q", err.Error(), want)
	}
}
