package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// FileJSON is the name of the report's JSON file in a run's directory.
const FileJSON = "report.json"

// FileRunbookLog is the name of the file a runbook's whole output is kept in, next to the
// report.
const FileRunbookLog = "runbook.log"

// ErrSchemaVersion is wrapped by the error of a report.json whose schema version this pgdrill
// does not read, so the CLI can tell "too new or too old" apart from a broken file.
var ErrSchemaVersion = errors.New("unknown report schema version")

// Read reads and validates DIR/report.json. A report of another schema version is refused
// with the version it has and the one this pgdrill reads, rather than half-understood.
func Read(dir string) (*Report, error) {
	path := filepath.Join(dir, FileJSON)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	r, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("read report %s: %w", path, err)
	}
	return r, nil
}

// Decode parses and validates a report.json document. The schema version is looked at first,
// so a report from another pgdrill fails on its version, not on some field that moved.
func Decode(data []byte) (*Report, error) {
	var head struct {
		SchemaVersion *string `json:"schema_version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("decode report: %w", err)
	}
	switch {
	case head.SchemaVersion == nil:
		return nil, fmt.Errorf("decode report: no schema_version (this pgdrill reads %s): %w", SchemaVersion, ErrSchemaVersion)
	case *head.SchemaVersion != SchemaVersion:
		return nil, fmt.Errorf("decode report: schema version %q, this pgdrill reads %s (use the pgdrill that wrote it, or a newer one): %w",
			*head.SchemaVersion, SchemaVersion, ErrSchemaVersion)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decode report: %w", err)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Encode validates the report and writes it as indented JSON, the bytes of report.json.
func Encode(r *Report) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	return buf.Bytes(), nil
}

// Write validates the report and writes DIR/report.json, creating DIR. An invalid report is
// not written: a scorecard rendered later from it would mislead.
func Write(dir string, r *Report) error {
	data, err := Encode(r)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return writeFile(dir, FileJSON, data)
}

// writeFile writes DIR/NAME, creating DIR, through a temporary file and a rename so that a
// reader (a CI artifact upload, a trend run) never sees half a file.
func writeFile(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create report directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return errors.Join(fmt.Errorf("write %s: %w", name, err), os.Remove(tmp.Name()))
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return errors.Join(fmt.Errorf("write %s: %w", name, err), os.Remove(tmp.Name()))
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return errors.Join(fmt.Errorf("write %s: %w", name, err), os.Remove(tmp.Name()))
	}
	return nil
}
