package scenarios

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pgdrill/pgdrill/harness/objective"
)

// builtinFiles are the built-in scenarios, one per incident, each named after the incident it
// reproduces.
//
//go:embed *.yaml
var builtinFiles embed.FS

// ErrNotFound is returned by Lookup for a name that is neither a built-in scenario nor a file.
var ErrNotFound = errors.New("no such scenario")

// Parse decodes and validates one scenario file's contents. name is the file name problems are
// reported against. Its error is a *ValidationError listing every problem, in file order. Files
// the scenario names (a schema) are not looked for: Load does that.
func Parse(name string, data []byte) (*Scenario, error) { return parse(name, data, "") }

// parse is Parse, checking the files the scenario names relative to dir when it is not empty.
func parse(name string, data []byte, dir string) (*Scenario, error) {
	s := &Scenario{File: name}
	d := newDecoder(name, dir)
	if d.document(data, s) {
		applyDefaults(s, d)
		validate(s, d)
	}
	if len(d.problems) > 0 {
		return nil, &ValidationError{Problems: d.sorted()}
	}
	return s, nil
}

// Load reads and validates a scenario file.
func Load(file string) (*Scenario, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	return parse(file, data, filepath.Dir(file))
}

// Builtin returns the built-in scenarios, sorted by id, freshly decoded (callers may change
// them). A built-in that does not validate is a bug in pgdrill, caught by its tests; Builtin
// panics on one.
func Builtin() []*Scenario {
	entries, err := fs.ReadDir(builtinFiles, ".")
	if err != nil {
		panic(fmt.Sprintf("scenarios: read embedded files: %v", err))
	}
	out := make([]*Scenario, 0, len(entries))
	for _, e := range entries {
		data, err := builtinFiles.ReadFile(e.Name())
		if err != nil {
			panic(fmt.Sprintf("scenarios: read embedded %s: %v", e.Name(), err))
		}
		s, err := Parse(path.Join("scenarios", e.Name()), data)
		if err != nil {
			panic(fmt.Sprintf("scenarios: built-in %s is invalid:\n%v", e.Name(), err))
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *Scenario) int { return strings.Compare(a.Metadata.ID, b.Metadata.ID) })
	return out
}

// Lookup finds a scenario by built-in id, or else as a file path, so the command line takes
// either (`pgdrill run wrong-id-deletion`, `pgdrill run ./ours.yaml`).
func Lookup(idOrFile string) (*Scenario, error) {
	var ids []string
	for _, s := range Builtin() {
		if s.Metadata.ID == idOrFile {
			return s, nil
		}
		ids = append(ids, s.Metadata.ID)
	}
	if _, err := os.Stat(idOrFile); err != nil && errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("find scenario %q: %w: not a built-in%s (see `pgdrill scenarios list`) nor a file",
			idOrFile, ErrNotFound, objective.DidYouMean(idOrFile, ids))
	}
	return Load(idOrFile)
}
