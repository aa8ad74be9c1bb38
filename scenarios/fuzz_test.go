package scenarios_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/pgdrill/pgdrill/scenarios"
)

// fuzzFile is the name every fuzzed scenario is parsed under, so that the properties can check
// that each problem names it.
const fuzzFile = "fuzz.yaml"

// FuzzScenario feeds arbitrary bytes to Parse, the one entry point that decodes and validates
// a scenario file. Scenario files are written by people and CI configurations, so whatever they
// hold must end in a scenario or in problems a person can act on, never in a panic:
//
//   - Parse returns a scenario or a *ValidationError with at least one problem, never both;
//   - every problem names the file, a line inside it (file:line[:col]) and, unless it concerns
//     the file as a whole (YAML syntax, no document or several, a document that is not a
//     mapping), a field;
//   - problems come in file order;
//   - an accepted scenario, written out with every default, reads back as the same scenario.
//
// The seeds are the built-in scenarios, the test files and the YAML features the decoder
// refuses; testdata/fuzz/FuzzScenario holds the inputs that once broke it.
func FuzzScenario(f *testing.F) {
	for _, pattern := range []string{"*.yaml", "testdata/*.yaml"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatalf("list seed scenarios %s: %v", pattern, err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatalf("read seed scenario: %v", err)
			}
			f.Add(data)
		}
	}
	for _, seed := range []string{
		"",
		"---\n",
		minimal,
		minimal + "---\n" + minimal,
		minimal + "  objectives: [rto<=15m, rpo<=5s, completeness>=99.5%, collateral==0, integrity==ok, backups==verified]\n",
		minimal + "  objectives: [rto<=0s, completeness>=0%, rot<=1h, rto<=1h, '']\n",
		minimal + "  faults:\n    - {kind: kill-shard, phase: restore, params: {shard: 1, x: [1, {a: b}]}}\n",
		minimal + "  detection: {probe: {interval: 5s, timeout: 1s}}\n",
		minimal + "  restore: {strategy: runbook, runbook: {command: |\n      ./restore.sh\n    , timeout: 0}}\n",
		minimal + "  seed: 18446744073709551615\n  cluster: {shards: 9223372036854775808}\n",
		minimal + "  dataset: {rows: -1, tenants: 1e3}\n  workload: {mix: {insert: .inf}}\n",
		"base: &b {id: t}\nmetadata: *b\n",
		"metadata:\n  <<: {id: t}\n",
		"apiVersion: !!str pgdrill.dev/v1alpha1\n",
		"apiVersion: pgdrill.dev/v1alpha1\napiVersion: pgdrill.dev/v1alpha1\n",
		"? [a]\n: b\n",
		"spec: {incident: {kind: ring-rollout, rings: [{name: a, fraction: 1e-300}, {name: '', guard: {}}]}}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := scenarios.Parse(fuzzFile, data)
		if err == nil {
			if s == nil {
				t.Fatal("Parse returned neither a scenario nor an error")
			}
			checkRoundTrip(t, s)
			return
		}
		if s != nil {
			t.Fatalf("Parse returned a scenario and an error: %v", err)
		}
		var ve *scenarios.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("error is a %T, not a *scenarios.ValidationError: %v", err, err)
		}
		if len(ve.Problems) == 0 {
			t.Fatal("a *scenarios.ValidationError without problems")
		}
		// YAML breaks lines at \n, \r\n and a lone \r.
		lastLine := bytes.Count(data, []byte("\n")) + bytes.Count(data, []byte("\r")) -
			bytes.Count(data, []byte("\r\n")) + 1
		for i, p := range ve.Problems {
			checkProblem(t, p, lastLine)
			if i > 0 {
				prev := ve.Problems[i-1]
				if p.Line < prev.Line || p.Line == prev.Line && p.Column < prev.Column {
					t.Errorf("problems out of file order: %q before %q", prev, p)
				}
			}
		}
	})
}

// fileLevel are parts of the messages of the problems that concern the file as a whole (its
// syntax, its documents, what its one document is) and so name no field.
var fileLevel = []string{"invalid YAML: ", "empty file; ", "YAML documents; ", "a scenario file is a mapping",
	"not supported in scenario files"}

// checkProblem checks that a problem can be acted on: it is located inside the file, in the form
// editors and CI logs jump to, and names its field.
func checkProblem(t *testing.T, p scenarios.Problem, lastLine int) {
	t.Helper()
	if p.File != fuzzFile {
		t.Errorf("problem names file %q, not %q: %q", p.File, fuzzFile, p)
	}
	if p.Line < 1 || p.Line > lastLine || p.Column < 0 {
		t.Errorf("problem at line %d column %d, outside the file's %d lines: %q", p.Line, p.Column, lastLine, p)
	}
	if p.Message == "" {
		t.Errorf("problem says nothing: %q", p)
	}
	if strings.TrimSpace(p.Field) == "" && !slices.ContainsFunc(fileLevel, func(m string) bool { return strings.Contains(p.Message, m) }) {
		t.Errorf("problem names no field: %q", p)
	}
	if want := fmt.Sprintf("%s:%d", fuzzFile, p.Line); !strings.HasPrefix(p.String(), want) {
		t.Errorf("problem %q does not start with %s", p, want)
	}
}

// checkRoundTrip writes an accepted scenario out, every default spelled out, and checks that it
// reads back as the same scenario: what pgdrill writes (`pgdrill scenarios show`, reports) must
// be a file that runs the same drill. The scenarios are compared as written, where an empty list
// and none are the same. They are written with every string quoted (JSON style): go-yaml leaves
// some strings plain that it then reads back as something else (a leading tab, "? x", "1e3"),
// which is go-yaml's to fix, not the scenario format's.
func checkRoundTrip(t *testing.T, s *scenarios.Scenario) {
	t.Helper()
	if len(s.Objectives()) == 0 {
		t.Errorf("accepted scenario has no objectives")
	}
	shown := write(t, s)
	again, err := scenarios.Parse(fuzzFile, shown)
	if err != nil {
		t.Fatalf("accepted scenario, written out, is refused:\n%s\n%v", shown, err)
	}
	if reshown := write(t, again); !bytes.Equal(reshown, shown) {
		t.Fatalf("accepted scenario, written out, reads back differently:\n%s\nwritten again:\n%s", shown, reshown)
	}
	if !reflect.DeepEqual(again.Objectives(), s.Objectives()) {
		t.Fatalf("accepted scenario, written out, reads back with objectives %v instead of %v:\n%s",
			again.Objectives(), s.Objectives(), shown)
	}
}

// write writes a scenario as YAML with every string quoted.
func write(t *testing.T, s *scenarios.Scenario) []byte {
	t.Helper()
	b, err := yaml.MarshalWithOptions(s, yaml.JSON())
	if err != nil {
		t.Fatalf("marshal accepted scenario: %v", err)
	}
	return b
}
