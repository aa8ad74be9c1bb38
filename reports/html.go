package reports

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"time"
)

// FileHTML is the name of the scorecard in a run's directory.
const FileHTML = "scorecard.html"

// Limits that keep the scorecard on one printed page; report.json has everything.
const (
	htmlMaxTenants    = 8
	htmlMaxCollateral = 5
)

//go:embed scorecard.html.tmpl
var scorecardTemplate string

var scorecardTmpl = template.Must(template.New(FileHTML).Funcs(templateFuncs).Parse(scorecardTemplate))

// templateFuncs are the formatters both HTML pages use, so figures read the same everywhere.
var templateFuncs = template.FuncMap{
	"ms":        MS,
	"dur":       func(n int64) string { return Words(ms(n)) },
	"int64":     func(n int) int64 { return int64(n) },
	"deref":     func(f *float64) float64 { return *f },
	"other":     func(t TenantResult) int64 { return t.Duplicated + t.Resurrected + t.Unexpected },
	"thousands": Thousands,
	"percent":   Percent,
	"count":     Count,
	"shard":     ShardName,
	"when":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
}

// scorecardView is what the scorecard template shows, computed from the report.
type scorecardView struct {
	R             *Report
	SchemaVersion string
	Headline      string
	VerdictClass  string
	// Judged is false when the drill broke or was aborted before scoring: figures it never
	// measured show as unknown, not as zero.
	Judged       bool
	Took         string
	RTO          gauge
	RTOObjective *ObjectiveResult
	Recovered    gauge
	Complete     int
	Timeline     timelineChart
	Tenants      []TenantResult
	TenantsMore  int
	Collateral   []Collateral
	CollatMore   int
	CollatRows   int64
	// Schema are the schema differences shown, SchemaMore how many more report.json has.
	Schema     []SchemaChange
	SchemaMore int
	// BackupsBroken says a backup chain check failed (Report.BackupsBroken).
	BackupsBroken bool
	// Projection is the chart of the report's projection, when it has one.
	Projection *projectionChart
}

// gauge is a one-bar chart of a value against a scale, with an optional objective mark. Label
// is its text equivalent.
type gauge struct {
	Fill, Mark float64
	HasMark    bool
	Class      string
	Label      string
}

// gaugeWidth is the width of a gauge's bar, in SVG user units.
const gaugeWidth = 220.0

// HTML renders the one-page scorecard for leadership: a single self-contained file (inline
// CSS and SVG, a Content-Security-Policy that forbids every request) that says the verdict in
// plain words first, then time to restore against the objective, data recovered, tenants
// harmed, the phase timeline, per-tenant completeness, collateral, what went wrong and the
// next action. Every chart has a text equivalent; pass and fail are words and symbols, not
// only colours; print CSS fits it on one page.
func HTML(r *Report) ([]byte, error) {
	v := scorecardView{
		R: r, SchemaVersion: SchemaVersion, Headline: r.Headline(),
		VerdictClass: verdictClass(r.Verdict), Judged: r.Judged(), Took: Words(r.Finished.Sub(r.Started)),
		Timeline: timeline(r), CollatRows: collateralRows(r), Projection: projection(r),
	}
	v.RTO = rtoGauge(r)
	if o, ok := r.Objective("rto"); ok {
		v.RTOObjective = &o
	}
	v.Recovered = gauge{
		Fill:  round1(gaugeWidth * r.Measures.Completeness() / 100),
		Class: "pass",
		Label: fmt.Sprintf("%s of %s came back exactly", Thousands(r.Measures.RowsRestored), Count(r.Measures.RowsExpected, "row")),
	}
	if r.Measures.RowsRestored < r.Measures.RowsExpected {
		v.Recovered.Class = "fail"
	}
	// Incomplete tenants first: they are the story; complete ones are counted.
	var complete, incomplete []TenantResult
	for _, t := range r.Tenants {
		if t.Complete {
			complete = append(complete, t)
		} else {
			incomplete = append(incomplete, t)
		}
	}
	v.Complete = len(complete)
	shown := append(incomplete, complete...)
	v.Tenants, v.TenantsMore = shown[:min(len(shown), htmlMaxTenants)], max(0, len(shown)-htmlMaxTenants)
	v.Collateral, v.CollatMore = r.Collateral[:min(len(r.Collateral), htmlMaxCollateral)], max(0, len(r.Collateral)-htmlMaxCollateral)
	v.Schema, v.SchemaMore = r.Schema[:min(len(r.Schema), htmlMaxCollateral)], max(0, len(r.Schema)-htmlMaxCollateral)
	v.BackupsBroken = r.BackupsBroken()
	var buf bytes.Buffer
	if err := scorecardTmpl.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("render scorecard: %w", err)
	}
	return buf.Bytes(), nil
}

// rtoGauge draws the measured RTO against its objective, on a scale that shows both.
func rtoGauge(r *Report) gauge {
	g := gauge{Class: "unknown", Label: "time to restore: not measured"}
	o, hasObjective := r.Objective("rto")
	if r.Measures.RTOMS == nil {
		return g
	}
	measured := float64(*r.Measures.RTOMS) / 1000
	top := measured
	if hasObjective {
		top = max(top, o.Threshold.Value)
	}
	top *= 1.1
	g.Fill = round1(gaugeWidth * measured / top)
	g.Label = "time to restore: " + MS(r.Measures.RTOMS)
	g.Class = "pass"
	if hasObjective {
		g.HasMark, g.Mark = true, round1(gaugeWidth*o.Threshold.Value/top)
		g.Label += ", objective " + o.Threshold.String()
		g.Class = o.Outcome().Class
	}
	return g
}

// verdictClass is the styling class of a verdict: pass, fail or unknown.
func verdictClass(v Verdict) string {
	switch {
	case v.Passed():
		return "pass"
	case v == Fail:
		return "fail"
	default:
		return "unknown"
	}
}
