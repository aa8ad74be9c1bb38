package reports_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/reports"
)

// browserLabel marks specs that need Debian's chromium package (.ci/run installs it).
const browserLabel = "browser"

// findChromium returns chromium's path. Without it the spec fails under CI and is skipped, and
// counted in the suite's "not run, because" line, elsewhere (drilltest.NeedTool).
func findChromium() string {
	GinkgoHelper()
	return drilltest.NeedTool("chromium", "apt-get install chromium", "the page was not opened in a browser")
}

var _ = Describe("the pages in a real headless Chromium", Label(browserLabel), func() {
	DescribeTable("the scorecard requests nothing, logs no error, shows the key figures and prints on one page",
		func(build func() *reports.Report, figures ...string) {
			chromium := findChromium()
			dir := GinkgoT().TempDir()
			r := build()
			_, err := reports.WriteAll(dir, r)
			Expect(err).NotTo(HaveOccurred())

			p := openInChromium(chromium, filepath.Join(dir, reports.FileHTML))
			// The screenshot is kept first: it is most useful when a check below fails.
			shot := filepath.Join(artifactDir(), r.RunID+".scorecard.png")
			Expect(os.WriteFile(shot, p.PNG, 0o644)).To(Succeed())
			AddReportEntry("screenshot", shot, ReportEntryVisibilityAlways)
			GinkgoWriter.Println("scorecard screenshot:", shot)
			Expect(p.Requests).To(BeEmpty(), "the scorecard must be self-contained")
			Expect(p.Problems).To(BeEmpty())
			Expect(p.Text).To(ContainSubstring(r.Headline()), "the plain-words verdict is on the page")
			for _, f := range figures {
				Expect(p.Text).To(ContainSubstring(f))
			}
			Expect(p.PDFPages).To(Equal(1), "prints on one A4 page")
		},
		Entry("PASS", passReport, "✔ Passed (PASS)", "4 min 12 s", "✔ objective 15 min met", "100%",
			"48,210 of 48,210 rows", "✔ 12 of 12 back complete", "✔ no bystander lost data"),
		Entry("FAIL with collateral", failReport, "✖ Failed (FAIL)", "18 min", "✖ objective 15 min missed", "99.87%",
			"✖ 10 of 12 back complete", "✖ 41 rows differ", "4 missing, 2 changed",
			"index issues_tenant_id_project_id_idx on shard 1 is gone", "Do not use full-shard-pitr on shared shards"),
		Entry("ERROR", errorReport, "⚠ Harness error (ERROR)", "not measured", "? not checked", "Not checked: the drill did not get that far",
			"no space left on /dev/shm"),
		Entry("FAIL on broken backups", brokenBackupsReport, "✖ Failed (FAIL)", "the restore was not attempted",
			"✖ shard-1: WAL archive is missing 1 segment(s): 000000010000000000000039", "Not checked: the drill did not get that far"),
		Entry("INCONCLUSIVE", inconclusiveReport, "? Inconclusive (INCONCLUSIVE)", "? not judged", "No other tenant lost or changed data"),
	)

	It("the trend page requests nothing and names the stale scenario", func() {
		chromium := findChromium()
		root := writeRuns()
		t, err := reports.Trend(trendOptions(), root)
		Expect(err).NotTo(HaveOccurred())
		_, err = reports.WriteTrend(root, t)
		Expect(err).NotTo(HaveOccurred())

		p := openInChromium(chromium, filepath.Join(root, reports.FileTrendHTML))
		shot := filepath.Join(artifactDir(), "trend.png")
		Expect(os.WriteFile(shot, p.PNG, 0o644)).To(Succeed())
		AddReportEntry("screenshot", shot, ReportEntryVisibilityAlways)
		Expect(p.Requests).To(BeEmpty())
		Expect(p.Problems).To(BeEmpty())
		Expect(p.Text).To(ContainSubstring("⚠ Not run in the last 7 days: shard-loss, update-without-where"))
		Expect(p.Text).To(ContainSubstring("66.66%"))
	})

	It("would catch a page that requests something (the check can fail)", func() {
		chromium := findChromium()
		path := filepath.Join(GinkgoT().TempDir(), "leaky.html")
		Expect(os.WriteFile(path, []byte(`<!DOCTYPE html><html><body><img src="https://fonts.example.com/x.png">leaky</body></html>`), 0o644)).To(Succeed())
		p := openInChromium(chromium, path)
		Expect(p.Requests).To(ContainElement("https://fonts.example.com/x.png"))
		Expect(p.Problems).NotTo(BeEmpty(), "the failed load is logged as an error")
	})
})
