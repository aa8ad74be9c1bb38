package reports_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/reports"
)

// updateGolden rewrites the golden files instead of comparing: PGDRILL_UPDATE_GOLDEN=1 go test
// ./reports/, then review the diff like any other change.
var updateGolden = os.Getenv("PGDRILL_UPDATE_GOLDEN") == "1"

// expectGolden compares got with testdata/NAME, or rewrites it under updateGolden.
func expectGolden(name string, got []byte) {
	GinkgoHelper()
	path := filepath.Join("testdata", name)
	if updateGolden {
		Expect(os.WriteFile(path, got, 0o644)).To(Succeed())
		return
	}
	want, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred(), "no golden file; run with PGDRILL_UPDATE_GOLDEN=1 to create it")
	Expect(string(got)).To(Equal(string(want)), "%s differs from its golden file; if the change is intended, run with PGDRILL_UPDATE_GOLDEN=1 and review the diff", path)
}

var _ = Describe("every renderer against its golden files", func() {
	for name, build := range examples {
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
