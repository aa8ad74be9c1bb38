package reports_test

import (
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/reports"
)

// expectGolden compares got with testdata/NAME. PGDRILL_UPDATE_GOLDEN=1 go test ./reports/
// rewrites the files instead and fails (see drilltest.ExpectGolden): review the diff, then run
// again without it.
func expectGolden(name string, got []byte) {
	GinkgoHelper()
	drilltest.ExpectGolden(filepath.Join("testdata", name), got)
}

var _ = Describe("every renderer against its golden files", func() {
	for _, name := range exampleNames() {
		build := examples[name]
		It("renders the "+name+" report the same as before", func() {
			r := build()
			data, err := reports.Encode(r)
			Expect(err).NotTo(HaveOccurred())
			expectGolden(name+".report.json.golden", data)

			junit, err := reports.JUnit(r)
			Expect(err).NotTo(HaveOccurred())
			expectGolden(name+".junit.xml.golden", junit)

			expectGolden(name+".summary.md.golden", reports.Markdown(r))

			html, err := reports.HTML(r)
			Expect(err).NotTo(HaveOccurred())
			expectGolden(name+".scorecard.html.golden", html)
		})
	}
})
