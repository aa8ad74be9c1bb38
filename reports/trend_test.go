package reports_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/reports"
)

// writeRuns writes a reports root: three runs of wrong-id-deletion this week (pass, fail,
// pass), one of shard-loss ten days ago.
func writeRuns() string {
	GinkgoHelper()
	root := GinkgoT().TempDir()
	second := failReport()
	second.Started, second.Finished = t0.Add(24*time.Hour), t0.Add(24*time.Hour+20*time.Minute)
	third := passReport()
	third.RunID = "20260311-020000-wrong-id-deletion-s43"
	third.Started, third.Finished = t0.Add(48*time.Hour), t0.Add(48*time.Hour+5*time.Minute)
	third.Measures.RTOMS = ptr[int64](198_000)
	old := passReport()
	old.RunID, old.Scenario.ID, old.Scenario.Title = "20260227-020000-shard-loss-s1", "shard-loss", "A shard's server and data are destroyed"
	old.Started, old.Finished = t0.Add(-10*24*time.Hour), t0.Add(-10*24*time.Hour+30*time.Minute)
	for _, r := range []*reports.Report{passReport(), second, third, old} {
		_, err := reports.WriteAll(filepath.Join(root, r.RunID), r)
		Expect(err).NotTo(HaveOccurred())
	}
	return root
}

// trendOptions draws the trend on Thursday of the runs' week, knowing one scenario never run.
func trendOptions() reports.TrendOptions {
	return reports.TrendOptions{Now: t0.Add(3 * 24 * time.Hour),
		Scenarios: []string{"wrong-id-deletion", "shard-loss", "update-without-where"}}
}

var _ = Describe("the trend across runs", func() {
	It("sums runs up per scenario, with pass rates, the last run and the scenarios not run lately", func() {
		t, err := reports.Trend(trendOptions(), writeRuns())
		Expect(err).NotTo(HaveOccurred())
		Expect(t.Stale).To(Equal([]string{"shard-loss", "update-without-where"}))
		Expect(t.Scenarios).To(HaveLen(3))
		w := t.Scenarios[2]
		Expect(w.ID).To(Equal("wrong-id-deletion"))
		Expect(w.Runs).To(HaveLen(3))
		Expect(w.PassRate).To(BeNumerically("~", 66.67, 0.01))
		Expect(w.Last().RunID).To(Equal("20260311-020000-wrong-id-deletion-s43"))
		Expect(*w.Last().RTOMS).To(Equal(int64(198_000)))
		Expect(*w.RTOObjectiveMS).To(Equal(int64(15 * 60_000)))
		Expect(w.Weeks).To(Equal([]reports.WeekRate{{Week: "2026-03-09", Runs: 3, Passed: 2, Rate: 200.0 / 3}}))
		Expect(t.Scenarios[1].ID).To(Equal("update-without-where"))
		Expect(t.Scenarios[1].Runs).To(BeEmpty())
		Expect(t.Scenarios[1].Stale).To(BeTrue())
		Expect(*t.Scenarios[0].DaysSinceLast).To(Equal(13.0))
	})

	It("writes trend.json and trend.html the same as before", func() {
		root := writeRuns()
		t, err := reports.Trend(trendOptions(), root)
		Expect(err).NotTo(HaveOccurred())
		out := GinkgoT().TempDir()
		paths, err := reports.WriteTrend(out, t)
		Expect(err).NotTo(HaveOccurred())
		Expect(paths).To(Equal([]string{filepath.Join(out, "trend.json"), filepath.Join(out, "trend.html")}))
		for _, name := range []string{"trend.json", "trend.html"} {
			data, err := os.ReadFile(filepath.Join(out, name))
			Expect(err).NotTo(HaveOccurred())
			expectGolden(name+".golden", data)
		}
		var back reports.TrendReport
		data, err := os.ReadFile(paths[0])
		Expect(err).NotTo(HaveOccurred())
		Expect(json.Unmarshal(data, &back)).To(Succeed())
		Expect(back.SchemaVersion).To(Equal(reports.TrendSchemaVersion))
	})

	It("lists unreadable reports instead of failing, and fails when there is nothing to draw", func() {
		root := writeRuns()
		bad := filepath.Join(root, "broken")
		Expect(os.MkdirAll(bad, 0o755)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(bad, "report.json"), []byte(`{"schema_version": "pgdrill.report/v9"}`), 0o644)).To(Succeed())
		t, err := reports.Trend(trendOptions(), root)
		Expect(err).NotTo(HaveOccurred())
		Expect(t.Skipped).To(HaveLen(1))
		Expect(t.Skipped[0].Error).To(ContainSubstring(`"pgdrill.report/v9"`))

		_, err = reports.Trend(trendOptions(), GinkgoT().TempDir())
		Expect(err).To(MatchError(ContainSubstring("no readable report.json found")))
	})
})
