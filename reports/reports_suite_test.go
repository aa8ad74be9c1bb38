package reports_test

import (
	"flag"
	"testing"

	. "github.com/onsi/ginkgo/v2"

	"github.com/pgdrill/pgdrill/harness/drilltest"
)

// suiteT is go test's T, for what Ginkgo's proxy cannot give: an artifact directory that
// `go test -artifacts` keeps under -outputdir.
var suiteT *testing.T

func TestReports(t *testing.T) {
	suiteT = t
	drilltest.RunSpecs(t, "reports")
}

// artifactDir is where a spec keeps files for people to look at (the browser screenshot):
// go test's artifact directory when run with -artifacts, else a directory that is kept.
func artifactDir() string {
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		return suiteT.ArtifactDir()
	}
	return GinkgoT().ArtifactDir()
}
