package reports_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/reports"
)

var _ = Describe("the report model", func() {
	It("round-trips through report.json", func() {
		dir := GinkgoT().TempDir()
		want := failReport()
		Expect(reports.Write(dir, want)).To(Succeed())
		got, err := reports.Read(dir)
		Expect(err).NotTo(HaveOccurred())
		Expect(got).To(Equal(want))
	})

	It("says passed, never failed, and carries its schema version", func() {
		data, err := reports.Encode(passReport())
		Expect(err).NotTo(HaveOccurred())
		var doc map[string]any
		Expect(json.Unmarshal(data, &doc)).To(Succeed())
		Expect(doc["schema_version"]).To(Equal(reports.SchemaVersion))
		Expect(string(data)).To(ContainSubstring(`"passed": true`))
		Expect(string(data)).NotTo(ContainSubstring(`"failed"`))
	})

	DescribeTable("refuses a report.json of another schema version, naming both versions",
		func(doc, want string) {
			dir := GinkgoT().TempDir()
			Expect(os.WriteFile(filepath.Join(dir, reports.FileJSON), []byte(doc), 0o644)).To(Succeed())
			_, err := reports.Read(dir)
			Expect(err).To(MatchError(reports.ErrSchemaVersion))
			Expect(err.Error()).To(ContainSubstring(want))
			Expect(err.Error()).To(ContainSubstring(reports.SchemaVersion))
		},
		Entry("a newer version", `{"schema_version": "pgdrill.report/v2", "verdict": {"new": "shape"}}`, `"pgdrill.report/v2"`),
		Entry("no version at all", `{"run_id": "x"}`, "no schema_version"),
	)

	It("lists every problem of an invalid report at once", func() {
		r := passReport()
		r.RunID, r.Verdict, r.Reason = "", "GREEN", ""
		r.Finished = r.Started.Add(-time.Second)
		r.Objectives[0].Inconclusive = true
		err := r.Validate()
		var ve *reports.ValidationError
		Expect(errors.As(err, &ve)).To(BeTrue())
		Expect(strings.Join(ve.Problems, "\n")).To(And(
			ContainSubstring("run_id is empty"),
			ContainSubstring(`verdict "GREEN" is not one of PASS, PASS_WITH_CONDITIONS, FAIL, ABORTED, ERROR, INCONCLUSIVE`),
			ContainSubstring("reason is empty"),
			ContainSubstring("before started"),
			ContainSubstring("both passed and inconclusive"),
		))
		Expect(reports.Write(GinkgoT().TempDir(), r)).To(MatchError(ContainSubstring("run_id is empty")))
	})

	It("refuses a PASS that hides collateral or a missed objective", func() {
		r := failReport()
		r.Verdict = reports.Pass
		Expect(r.Validate()).To(MatchError(And(
			ContainSubstring("verdict PASS with objective rto<=15m not passed"),
			ContainSubstring("verdict PASS with collateral"))))
	})

	It("refuses a PASS_WITH_CONDITIONS with a missed objective, and takes its bounded collateral", func() {
		r := failReport()
		r.Verdict = reports.PassWithConditions
		err := r.Validate()
		Expect(err).To(MatchError(ContainSubstring("verdict PASS_WITH_CONDITIONS with objective rto<=15m not passed")))
		Expect(err).NotTo(MatchError(ContainSubstring("with collateral")), "collateral an objective bounds is a condition")
	})

	DescribeTable("says the drill in one plain sentence, what leadership reads first",
		func(build func() *reports.Report, want string) {
			Expect(build().Headline()).To(Equal(want))
		},
		Entry("pass", passReport, "A cleanup script handed the wrong ids deleted 12 tenants on 3 shards; all 12 were back in 4 min 12 s against an objective of 15 min; no other tenant lost data."),
		Entry("fail", failReport, "A cleanup script handed the wrong ids deleted 12 tenants on 3 shards; only 10 of 12 came back complete, after 18 min against an objective of 15 min; 3 other tenants had 41 rows harmed by the restore."),
		Entry("error", errorReport, "A cleanup script handed the wrong ids deleted 12 tenants on 3 shards; the drill stopped before the restore could be judged (Harness error); harm to other tenants was not checked."),
	)

	DescribeTable("writes durations and figures the way people read them",
		func(got, want string) { Expect(got).To(Equal(want)) },
		Entry(nil, reports.Words(850*time.Millisecond), "850 ms"),
		Entry(nil, reports.Words(2400*time.Millisecond), "2.4 s"),
		Entry(nil, reports.Words(252*time.Second), "4 min 12 s"),
		Entry(nil, reports.Words(15*time.Minute), "15 min"),
		Entry(nil, reports.Words(2*time.Hour+5*time.Minute), "2 h 5 min"),
		Entry(nil, reports.Percent(99.996), "99.99%"),
		Entry(nil, reports.Count(48210, "row"), "48,210 rows"),
		Entry(nil, reports.Count(1, "row"), "1 row"),
	)
})

var _ = Describe("WriteAll", func() {
	It("writes the four files of a drill's directory, and nothing for an invalid report", func() {
		dir := filepath.Join(GinkgoT().TempDir(), "run")
		paths, err := reports.WriteAll(dir, passReport())
		Expect(err).NotTo(HaveOccurred())
		Expect(paths).To(Equal([]string{filepath.Join(dir, "report.json"), filepath.Join(dir, "junit.xml"),
			filepath.Join(dir, "summary.md"), filepath.Join(dir, "scorecard.html")}))
		entries, err := os.ReadDir(dir)
		Expect(err).NotTo(HaveOccurred())
		Expect(entries).To(HaveLen(4), "no temporary files left behind")

		empty := filepath.Join(GinkgoT().TempDir(), "bad")
		bad := passReport()
		bad.SchemaVersion = "pgdrill.report/v0"
		_, err = reports.WriteAll(empty, bad)
		Expect(err).To(HaveOccurred())
		Expect(empty).NotTo(BeADirectory())
	})
})

var _ = Describe("the CI step summary", func() {
	It("appends summary.md to $GITHUB_STEP_SUMMARY when it is set, and does nothing otherwise", func() {
		path := filepath.Join(GinkgoT().TempDir(), "step_summary")
		Expect(os.WriteFile(path, []byte("earlier step\n"), 0o644)).To(Succeed())
		env := map[string]string{reports.StepSummaryEnv: path}
		appended, err := reports.AppendStepSummary(func(k string) string { return env[k] }, failReport())
		Expect(err).NotTo(HaveOccurred())
		Expect(appended).To(BeTrue())
		data, err := os.ReadFile(path)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(data)).To(HavePrefix("earlier step\n## ✖ FAIL"))

		appended, err = reports.AppendStepSummary(func(string) string { return "" }, failReport())
		Expect(err).NotTo(HaveOccurred())
		Expect(appended).To(BeFalse())
	})
})
