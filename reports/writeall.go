package reports

import (
	"fmt"
	"path/filepath"
)

// WriteAll writes every rendering of the report into dir — report.json, junit.xml,
// summary.md and scorecard.html — and returns the paths written, in that order. Both
// `pgdrill run --out DIR` and `pgdrill report DIR` call it, so a drill's directory always
// holds the same four files. An invalid report writes nothing.
func WriteAll(dir string, r *Report) ([]string, error) {
	data, err := Encode(r)
	if err != nil {
		return nil, fmt.Errorf("write reports: %w", err)
	}
	junit, err := JUnit(r)
	if err != nil {
		return nil, fmt.Errorf("write reports: %w", err)
	}
	html, err := HTML(r)
	if err != nil {
		return nil, fmt.Errorf("write reports: %w", err)
	}
	files := []struct {
		name string
		data []byte
	}{{FileJSON, data}, {FileJUnit, junit}, {FileMarkdown, Markdown(r)}, {FileHTML, html}}
	if r.Runbook != nil && r.Runbook.Log != "" { // not when re-rendering: report.json holds only the tail
		files = append(files, struct {
			name string
			data []byte
		}{FileRunbookLog, []byte(r.Runbook.Log)})
	}
	var written []string
	for _, f := range files {
		if err := writeFile(dir, f.name, f.data); err != nil {
			return written, fmt.Errorf("write reports: %w", err)
		}
		written = append(written, filepath.Join(dir, f.name))
	}
	return written, nil
}
