package reports

import (
	"fmt"
	"os"
	"strings"
)

// FileMarkdown is the name of the Markdown summary in a run's directory.
const FileMarkdown = "summary.md"

// mdMaxTenants bounds the per-tenant table of the summary; a CI step summary is read at a
// glance, and report.json has every tenant.
const mdMaxTenants = 20

// Markdown renders the report as GitHub-flavoured Markdown for a CI step summary: the verdict
// with its symbol and the plain-words headline first, then the objectives, the incomplete
// tenants, collateral, what went wrong and the next actions.
func Markdown(r *Report) []byte {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("## %s %s — %s\n\n", r.Verdict.Symbol(), r.Verdict, mdEscape(r.Scenario.Title))
	w("**%s**\n\n", mdEscape(r.Headline()))
	w("%s\n\n", mdEscape(r.Reason))
	if r.Scenario.Hypothesis != "" {
		w("> Hypothesis: %s\n\n", mdEscape(r.Scenario.Hypothesis))
	}
	w("| Measure | Value |\n|---|---|\n")
	w("| Time to restore (RTO) | %s |\n", MS(r.Measures.RTOMS))
	w("| Data loss window (RPO) | %s |\n", MS(r.Measures.RPOMS))
	w("| Time to detect | %s |\n", MS(r.Measures.DetectMS))
	w("| Data recovered | %s (%s of %s) |\n", Percent(r.Measures.Completeness()),
		Thousands(r.Measures.RowsRestored), Count(r.Measures.RowsExpected, "row"))
	w("| Tenants harmed by the incident | %d |\n", len(r.Incident.Affected))
	w("| Other tenants harmed by the restore | %d |\n", r.CollateralTenants())
	if k := r.Incident.KnowledgeLine(); k != "" {
		w("| What the restore was told | %s |\n", mdEscape(k))
	}
	b.WriteString("\n")
	if len(r.Objectives) > 0 {
		w("| Objective | Measured | Result | Why |\n|---|---|---|---|\n")
		for _, o := range r.Objectives {
			out := o.Outcome()
			measured := "not measured"
			if o.Measured != nil {
				measured = o.Measured.String()
			}
			w("| `%s` | %s | %s %s | %s |\n", o.Expression, measured, out.Symbol, out.Word, mdEscape(o.Reason))
		}
		b.WriteString("\n")
	}
	mdTenants(&b, r)
	if len(r.Collateral) > 0 {
		w("### Other tenants harmed\n\n| Tenant | Shard | Table | Rows | What differs |\n|---|---|---|---|---|\n")
		for _, c := range r.Collateral {
			w("| %d | %d | %s | %s | %s |\n", c.Tenant, c.Shard, mdEscape(c.Table), Thousands(c.Rows), mdEscape(c.Differs))
		}
		b.WriteString("\n")
	}
	mdBackups(&b, r)
	if len(r.Schema) > 0 {
		w("### Schema differences from before the incident (%d)\n\n", len(r.Schema))
		for i, c := range r.Schema {
			if i == mdMaxTenants {
				w("- …and %d more in report.json\n", len(r.Schema)-mdMaxTenants)
				break
			}
			w("- %s\n", mdEscape(c.Detail))
		}
		b.WriteString("\n")
	}
	if len(r.Checks) > 0 {
		w("Integrity:")
		for i, c := range r.Checks {
			if i > 0 {
				b.WriteString(";")
			}
			out := c.Outcome()
			w(" %s %s %s", out.Symbol, mdEscape(c.Name), out.Word)
		}
		b.WriteString(".\n\n")
	}
	if len(r.Problems) > 0 {
		w("### What went wrong\n\n")
		for _, p := range r.Problems {
			w("- %s\n", mdEscape(problemLine(p)))
		}
		b.WriteString("\n")
	}
	if lines := r.ProjectionLines(); len(lines) > 0 {
		w("### Projected to production size (not a measured RTO)\n\n")
		for _, l := range lines {
			w("- %s\n", mdEscape(l))
		}
		b.WriteString("\n")
	}
	if len(r.Notes) > 0 {
		w("### Notes\n\n")
		for _, n := range r.Notes {
			w("- %s\n", mdEscape(n))
		}
		b.WriteString("\n")
	}
	if rb := r.Runbook; rb != nil && rb.Tail != "" {
		w("### Runbook output (last lines; all of it in %s)\n\n```\n%s\n```\n\n", FileRunbookLog, strings.TrimRight(rb.Tail, "\n"))
	}
	if len(r.NextActions) > 0 {
		w("### Next actions\n\n")
		for _, a := range r.NextActions {
			w("- %s\n", mdEscape(a))
		}
		b.WriteString("\n")
	}
	schema := ""
	if r.Dataset.Schema != "" {
		schema = " of schema `" + r.Dataset.Schema + "`"
	}
	w("<sub>run `%s` · scenario `%s` · seed %d · strategy `%s` · %d shards, %s layout · %s, %s%s · %s</sub>\n",
		r.RunID, r.Scenario.ID, r.Seed, r.Strategy, r.Cluster.Shards, r.Cluster.Layout,
		Count(int64(r.Dataset.Tenants), "tenant"), Count(r.Dataset.Rows, "row"), schema, SchemaVersion)
	return []byte(b.String())
}

// mdBackups writes the backup chain checks: one line when every chain verified, a table naming
// what is broken otherwise.
func mdBackups(b *strings.Builder, r *Report) {
	if len(r.Backups) == 0 {
		return
	}
	broken := 0
	for _, c := range r.Backups {
		if !c.Verified {
			broken++
		}
	}
	if broken == 0 {
		fmt.Fprintf(b, "Backups: ✔ all %d base backups verified and their WAL archives are unbroken through the incident.\n\n", len(r.Backups))
		return
	}
	fmt.Fprintf(b, "### Backups broken (%d of %d)\n\n| Shard | Backup | WAL segments | Result |\n|---|---|---|---|\n", broken, len(r.Backups))
	for _, c := range r.Backups {
		result := "✔ verified"
		if !c.Verified {
			result = "✖ " + c.Problem
		}
		fmt.Fprintf(b, "| %s | %s | %s … %s | %s |\n", mdEscape(c.Shard), mdEscape(c.Backup), c.First, c.Last, mdEscape(result))
	}
	b.WriteString("\n")
}

// mdTenants writes the affected tenants that did not come back complete, or says they all did.
func mdTenants(b *strings.Builder, r *Report) {
	var incomplete []TenantResult
	for _, t := range r.Tenants {
		if !t.Complete {
			incomplete = append(incomplete, t)
		}
	}
	if len(r.Tenants) > 0 && len(incomplete) == 0 {
		fmt.Fprintf(b, "All %d affected tenants came back complete.\n\n", len(r.Tenants))
		return
	}
	if len(incomplete) == 0 {
		return
	}
	fmt.Fprintf(b, "### Tenants not fully restored (%d of %d)\n\n", len(incomplete), len(r.Tenants))
	b.WriteString("| Tenant | Shard | Expected | Restored | Lost | Wrong | Duplicated | Resurrected | Unexpected |\n|---|---|---|---|---|---|---|---|---|\n")
	for i, t := range incomplete {
		if i == mdMaxTenants {
			fmt.Fprintf(b, "\n…and %d more in report.json.\n", len(incomplete)-mdMaxTenants)
			break
		}
		fmt.Fprintf(b, "| %d | %d | %s | %s | %s | %s | %s | %s | %s |\n", t.ID, t.Shard, Thousands(t.Expected),
			Thousands(t.Restored), Thousands(t.Lost), Thousands(t.Wrong), Thousands(t.Duplicated),
			Thousands(t.Resurrected), Thousands(t.Unexpected))
	}
	b.WriteString("\n")
}

// mdEscape keeps free text (reasons, titles) from breaking a table row or turning into markup.
var mdEscape = strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;", "*", `\*`, "_", `\_`, "`", "\\`").Replace

// StepSummaryEnv is the variable GitHub Actions sets to the file a step appends its summary to.
const StepSummaryEnv = "GITHUB_STEP_SUMMARY"

// AppendStepSummary appends the report's Markdown to the file named by $GITHUB_STEP_SUMMARY,
// so a nightly drill's verdict shows on the workflow run's page. It reports whether it
// appended: outside GitHub Actions the variable is unset and nothing happens. getenv is
// os.Getenv, or the CLI's injected environment.
func AppendStepSummary(getenv func(string) string, r *Report) (bool, error) {
	path := getenv(StepSummaryEnv)
	if path == "" {
		return false, nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return false, fmt.Errorf("append step summary: %w", err)
	}
	_, werr := f.Write(append(Markdown(r), '\n'))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return false, fmt.Errorf("append step summary %s: %w", path, werr)
	}
	return true, nil
}
