package reports

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// FileJUnit is the name of the JUnit XML file in a run's directory.
const FileJUnit = "junit.xml"

// The JUnit document, restricted to what the schema Jenkins, GitLab and the GitHub test
// reporters accept (the xunit plugin's junit-10.xsd): properties only on a testsuite, skipped
// counted on testsuite but not on testsuites.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	ID         string          `xml:"id,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure"`
	Error     *junitMessage `xml:"error"`
	Skipped   *junitMessage `xml:"skipped"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Body    string `xml:",chardata"`
}

// JUnit renders the report as JUnit XML: one testsuite for the drill, holding a "verdict"
// testcase for the drill as a whole, one testcase per objective and one per integrity check.
// A missed objective or failed check is a <failure>; a broken or aborted drill is one <error>
// on the verdict testcase (its unjudged objectives are <skipped>, so one cause is counted
// once); anything inconclusive is <skipped> with its reason. Measures and objective
// expressions are testsuite properties. Testcase names are stable across runs, so CI
// systems can track each objective's history.
func JUnit(r *Report) ([]byte, error) {
	suite := junitSuite{
		Name:       "pgdrill " + r.Scenario.ID,
		Time:       seconds(r.Finished.Sub(r.Started)),
		Timestamp:  r.Started.UTC().Format("2006-01-02T15:04:05"),
		ID:         r.RunID,
		Properties: junitProperties(r),
	}
	class := "pgdrill." + r.Scenario.ID
	suite.Cases = append(suite.Cases, verdictCase(r, class))
	broken := r.Verdict == Error || r.Verdict == Aborted
	for _, o := range r.Objectives {
		c := junitCase{Name: "objective " + o.Expression, Classname: class + ".objectives", Time: "0"}
		c.judge(o.Passed, o.Inconclusive, broken, o.Reason, objectiveDetail(o))
		suite.Cases = append(suite.Cases, c)
	}
	for _, k := range r.Checks {
		c := junitCase{Name: "check " + k.Name, Classname: class + ".checks", Time: "0"}
		detail := k.Detail
		if k.Name == "schema" {
			detail = schemaText(r)
		}
		c.judge(k.Passed, k.Inconclusive, broken, k.Detail, detail)
		suite.Cases = append(suite.Cases, c)
	}
	for _, b := range r.Backups {
		c := junitCase{Name: "backups " + b.Shard, Classname: class + ".backups", Time: "0"}
		reason := "base backup " + b.Backup + " verified; WAL " + b.First + " … " + b.Last + " is archived"
		if !b.Verified {
			reason = b.Problem
		}
		c.judge(b.Verified, false, false, reason, reason)
		suite.Cases = append(suite.Cases, c)
	}
	for _, c := range suite.Cases {
		suite.Tests++
		switch {
		case c.Failure != nil:
			suite.Failures++
		case c.Error != nil:
			suite.Errors++
		case c.Skipped != nil:
			suite.Skipped++
		}
	}
	doc := junitSuites{Name: "pgdrill", Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors,
		Time: suite.Time, Suites: []junitSuite{suite}}
	out, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("render junit: %w", err)
	}
	return append([]byte(xml.Header), append(out, '\n')...), nil
}

// schemaText lists every schema difference, one per line, for the schema check's failure body.
func schemaText(r *Report) string {
	lines := make([]string, len(r.Schema))
	for i, c := range r.Schema {
		lines[i] = c.Detail
	}
	return strings.Join(lines, "\n")
}

// verdictCase is the testcase of the drill as a whole, carrying the verdict.
func verdictCase(r *Report, class string) junitCase {
	c := junitCase{Name: "verdict", Classname: class, Time: seconds(r.Finished.Sub(r.Started))}
	body := r.Headline() + problemsText(r)
	switch r.Verdict {
	case Fail:
		c.Failure = &junitMessage{Message: r.Reason, Type: string(r.Verdict), Body: body}
	case Error, Aborted:
		c.Error = &junitMessage{Message: r.Reason, Type: string(r.Verdict), Body: body}
	case Inconclusive:
		c.Skipped = &junitMessage{Message: r.Reason, Type: string(r.Verdict), Body: body}
	default:
		c.SystemOut = string(r.Verdict) + ": " + body
	}
	return c
}

// judge sets the case's outcome. In a broken drill, unjudged cases are skipped: the one error
// is on the verdict case.
func (c *junitCase) judge(passed, inconclusive, broken bool, reason, detail string) {
	switch {
	case inconclusive && broken:
		c.Skipped = &junitMessage{Message: "not judged: the drill did not finish; " + reason}
	case inconclusive:
		c.Skipped = &junitMessage{Message: reason}
	case !passed:
		c.Failure = &junitMessage{Message: reason, Type: "missed", Body: detail}
	default:
		c.SystemOut = reason
	}
}

func objectiveDetail(o ObjectiveResult) string {
	measured := "not measured"
	if o.Measured != nil {
		measured = o.Measured.String()
	}
	return fmt.Sprintf("objective: %s\nmeasured: %s\nthreshold: %s\n%s", o.Expression, measured, o.Threshold, o.Reason)
}

func problemsText(r *Report) string {
	var b strings.Builder
	if len(r.Problems) > 0 {
		b.WriteString("\n\nWhat went wrong:")
		for _, p := range r.Problems {
			b.WriteString("\n- " + problemLine(p))
		}
	}
	if len(r.NextActions) > 0 {
		b.WriteString("\n\nNext actions:")
		for _, a := range r.NextActions {
			b.WriteString("\n- " + a)
		}
	}
	return b.String()
}

// problemLine writes a problem with its phase, e.g. "replay: WAL segment ... missing".
func problemLine(p Problem) string {
	if p.Phase == "" {
		return p.Message
	}
	return p.Phase + ": " + p.Message
}

// junitProperties lists the run's facts and measures, in a fixed order, as name/value pairs.
func junitProperties(r *Report) []junitProperty {
	ps := []junitProperty{
		{"run_id", r.RunID},
		{"scenario", r.Scenario.ID},
		{"verdict", string(r.Verdict)},
		{"seed", strconv.FormatUint(r.Seed, 10)},
		{"strategy", r.Strategy},
		{"provider", r.Provider},
		{"cluster.shards", strconv.Itoa(r.Cluster.Shards)},
		{"cluster.layout", r.Cluster.Layout},
		{"dataset.tenants", strconv.Itoa(r.Dataset.Tenants)},
		{"dataset.rows", strconv.FormatInt(r.Dataset.Rows, 10)},
		{"incident.kind", r.Incident.Kind},
		{"incident.tenants", strconv.Itoa(len(r.Incident.Affected))},
		{"incident.harmed_rows", strconv.FormatInt(r.Incident.HarmedRows, 10)},
	}
	if r.Dataset.Schema != "" {
		ps = append(ps, junitProperty{"dataset.schema", r.Dataset.Schema})
	}
	m := r.Measures
	for _, d := range []struct {
		name string
		ms   *int64
	}{{"rto", m.RTOMS}, {"rpo", m.RPOMS}, {"detect", m.DetectMS}} {
		if d.ms != nil {
			ps = append(ps, junitProperty{"measure." + d.name + "_ms", strconv.FormatInt(*d.ms, 10)})
		}
	}
	for _, p := range m.Phases {
		ps = append(ps, junitProperty{"measure.phase." + p.Name + "_ms", strconv.FormatInt(p.MS, 10)})
	}
	ps = append(ps,
		junitProperty{"measure.rows_expected", strconv.FormatInt(m.RowsExpected, 10)},
		junitProperty{"measure.rows_restored", strconv.FormatInt(m.RowsRestored, 10)},
		junitProperty{"measure.collateral_rows", strconv.FormatInt(collateralRows(r), 10)},
	)
	for _, o := range r.Objectives {
		ps = append(ps, junitProperty{"objective." + o.Metric, o.Expression})
		if o.Measured != nil {
			ps = append(ps, junitProperty{"objective." + o.Metric + ".measured", o.Measured.String()})
		}
	}
	return ps
}

func collateralRows(r *Report) int64 {
	var n int64
	for _, c := range r.Collateral {
		n += c.Rows
	}
	return n
}

// seconds writes a duration as JUnit's time attribute: seconds with millisecond precision.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}
