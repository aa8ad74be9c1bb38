// Package reports holds pgdrill's versioned report model and everything that renders it:
// report.json, junit.xml for CI, summary.md for a CI step summary, scorecard.html for
// leadership, and the trend page across many runs.
//
// Three audiences read a drill, and they must never read different stories: so there is one
// model (Report), written once by the drill runner, and every renderer reads only that model.
// Layering, kept true on purpose: this package imports nothing from harness/, scenarios/ or
// fixtures/; the drill runner converts what those packages measured into a Report. That keeps
// `pgdrill report DIR` able to re-render any old report.json without a cluster, and keeps the
// renderers testable from hand-built reports.
//
// The JSON is versioned (SchemaVersion). Within a version, fields may be added but never
// change meaning; a change of meaning gets a new version, and Read refuses versions it does
// not know, loudly, instead of rendering a misleading scorecard.
package reports
