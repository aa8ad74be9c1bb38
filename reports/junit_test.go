package reports_test

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/reports"
)

// The schema, as much of XSD as testdata/junit.xsd uses: named elements whose complex type
// references other elements (in sequences and choices) and declares attributes.
type xsdSchema struct {
	Elements []xsdElement `xml:"element"`
}

type xsdElement struct {
	Name    string      `xml:"name,attr"`
	Ref     string      `xml:"ref,attr"`
	Complex *xsdComplex `xml:"complexType"`
}

type xsdComplex struct {
	xsdGroup
	Attributes []struct {
		Name string `xml:"name,attr"`
		Use  string `xml:"use,attr"`
	} `xml:"attribute"`
}

type xsdGroup struct {
	Elements  []xsdElement `xml:"element"`
	Sequences []xsdGroup   `xml:"sequence"`
	Choices   []xsdGroup   `xml:"choice"`
}

// refs lists the elements a group may contain, at any nesting.
func (g xsdGroup) refs() []string {
	var out []string
	for _, e := range g.Elements {
		out = append(out, e.Ref)
	}
	for _, sub := range append(slices.Clone(g.Sequences), g.Choices...) {
		out = append(out, sub.refs()...)
	}
	return out
}

// xmlNode is any XML element, for walking a document against the schema.
type xmlNode struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []xmlNode  `xml:",any"`
}

// schemaProblems checks doc against the schema: every element declared and allowed where it
// is, every attribute declared, every required attribute present.
func schemaProblems(schemaPath string, doc []byte) []string {
	GinkgoHelper()
	raw, err := os.ReadFile(schemaPath)
	Expect(err).NotTo(HaveOccurred())
	var schema xsdSchema
	Expect(xml.Unmarshal(raw, &schema)).To(Succeed())
	decls := map[string]xsdElement{}
	for _, e := range schema.Elements {
		decls[e.Name] = e
	}
	var root xmlNode
	Expect(xml.Unmarshal(doc, &root)).To(Succeed())
	var problems []string
	var walk func(n xmlNode, path string)
	walk = func(n xmlNode, path string) {
		path += "/" + n.XMLName.Local
		decl, ok := decls[n.XMLName.Local]
		if !ok {
			problems = append(problems, path+": element not in the schema")
			return
		}
		allowedAttrs := map[string]bool{}
		var allowedChildren []string
		if decl.Complex != nil {
			allowedChildren = decl.Complex.refs()
			for _, a := range decl.Complex.Attributes {
				allowedAttrs[a.Name] = true
				if a.Use == "required" && !slices.ContainsFunc(n.Attrs, func(x xml.Attr) bool { return x.Name.Local == a.Name }) {
					problems = append(problems, fmt.Sprintf("%s: required attribute %s missing", path, a.Name))
				}
			}
		}
		for _, a := range n.Attrs {
			if !allowedAttrs[a.Name.Local] {
				problems = append(problems, fmt.Sprintf("%s: attribute %s not in the schema", path, a.Name.Local))
			}
		}
		for _, c := range n.Children {
			if !slices.Contains(allowedChildren, c.XMLName.Local) {
				problems = append(problems, fmt.Sprintf("%s: %s not allowed here", path, c.XMLName.Local))
				continue
			}
			walk(c, path)
		}
	}
	walk(root, "")
	return problems
}

// The strict shape CI tools read, every count an integer attribute.
type strictSuites struct {
	XMLName xml.Name      `xml:"testsuites"`
	Suites  []strictSuite `xml:"testsuite"`
}

type strictSuite struct {
	Name       string `xml:"name,attr"`
	Tests      string `xml:"tests,attr"`
	Failures   string `xml:"failures,attr"`
	Errors     string `xml:"errors,attr"`
	Skipped    string `xml:"skipped,attr"`
	Time       string `xml:"time,attr"`
	Properties []struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	} `xml:"properties>property"`
	Cases []struct {
		Name    string         `xml:"name,attr"`
		Failure *strictMessage `xml:"failure"`
		Error   *strictMessage `xml:"error"`
		Skipped *strictMessage `xml:"skipped"`
	} `xml:"testcase"`
}

type strictMessage struct {
	Message *string `xml:"message,attr"`
}

func atoi(s string) int {
	GinkgoHelper()
	n, err := strconv.Atoi(s)
	Expect(err).NotTo(HaveOccurred(), "want an integer attribute, got %q", s)
	return n
}

var _ = Describe("junit.xml", func() {
	for _, name := range exampleNames() {
		build := examples[name]
		It("follows the JUnit schema CI tools accept, for the "+name+" report", func() {
			doc, err := reports.JUnit(build())
			Expect(err).NotTo(HaveOccurred())
			Expect(schemaProblems(filepath.Join("testdata", "junit.xsd"), doc)).To(BeEmpty())

			var s strictSuites
			Expect(xml.Unmarshal(doc, &s)).To(Succeed())
			Expect(s.Suites).To(HaveLen(1), "one testsuite per drill")
			suite := s.Suites[0]
			Expect(suite.Name).NotTo(BeEmpty())
			_, err = strconv.ParseFloat(suite.Time, 64)
			Expect(err).NotTo(HaveOccurred(), "time is seconds")
			failures, errs, skipped := 0, 0, 0
			for _, c := range suite.Cases {
				Expect(c.Name).NotTo(BeEmpty())
				for _, m := range []*strictMessage{c.Failure, c.Error, c.Skipped} {
					if m != nil {
						Expect(m.Message).NotTo(BeNil(), "%s: failure, error and skipped carry a message", c.Name)
						Expect(*m.Message).NotTo(BeEmpty())
					}
				}
				if c.Failure != nil {
					failures++
				}
				if c.Error != nil {
					errs++
				}
				if c.Skipped != nil {
					skipped++
				}
			}
			Expect(atoi(suite.Tests)).To(Equal(len(suite.Cases)))
			Expect(atoi(suite.Failures)).To(Equal(failures))
			Expect(atoi(suite.Errors)).To(Equal(errs))
			Expect(atoi(suite.Skipped)).To(Equal(skipped))
		})
	}

	It("has a testcase per objective, per check and per backup chain, and the verdict's testcase", func() {
		r := passReport()
		doc, err := reports.JUnit(r)
		Expect(err).NotTo(HaveOccurred())
		var s strictSuites
		Expect(xml.Unmarshal(doc, &s)).To(Succeed())
		var names []string
		for _, c := range s.Suites[0].Cases {
			names = append(names, c.Name)
		}
		Expect(names).To(Equal([]string{"verdict", "objective rto<=15m", "objective rpo<=5s", "objective completeness>=100%",
			"objective collateral==0", "objective integrity==ok", "objective backups==verified", "check schema", "check placement",
			"check routing", "backups shard-0", "backups shard-1", "backups shard-2", "backups shard-3"}))
		props := map[string]string{}
		for _, p := range s.Suites[0].Properties {
			props[p.Name] = p.Value
		}
		Expect(props).To(HaveKeyWithValue("objective.rto", "rto<=15m"))
		Expect(props).To(HaveKeyWithValue("objective.rto.measured", "4 min 12 s"))
		Expect(props).To(HaveKeyWithValue("measure.rto_ms", "252000"))
		Expect(props).To(HaveKeyWithValue("measure.phase.replay_ms", "121000"))
		Expect(props).To(HaveKeyWithValue("seed", "42"))
	})

	DescribeTable("maps verdicts to what CI shows",
		func(build func() *reports.Report, failures, errs, skipped int, verdictMessage string) {
			doc, err := reports.JUnit(build())
			Expect(err).NotTo(HaveOccurred())
			var s strictSuites
			Expect(xml.Unmarshal(doc, &s)).To(Succeed())
			suite := s.Suites[0]
			Expect([]int{atoi(suite.Failures), atoi(suite.Errors), atoi(suite.Skipped)}).To(Equal([]int{failures, errs, skipped}))
			v := suite.Cases[0]
			for _, m := range []*strictMessage{v.Failure, v.Error, v.Skipped} {
				if m != nil {
					Expect(*m.Message).To(Equal(verdictMessage))
				}
			}
		},
		Entry("PASS: nothing failed", passReport, 0, 0, 0, ""),
		Entry("FAIL: the verdict, each missed objective and each failed check are failures", failReport, 6, 0, 0,
			"3 other tenants lost 41 rows of acknowledged writes, and tenant 23 came back incomplete"),
		Entry("FAIL on broken backups: the verdict, the backups objective and the broken chain", brokenBackupsReport, 3, 0, 8,
			"the backups a restore needs are broken: shard-1: WAL archive is missing 1 segment(s): 000000010000000000000039"),
		Entry("ERROR: one error, the unjudged rest skipped", errorReport, 0, 1, 9,
			"the harness broke, so this drill says nothing about the restore: provision sidecar of shard 1: no space left on /dev/shm"),
		Entry("INCONCLUSIVE: skipped with the reason", inconclusiveReport, 0, 0, 2,
			"rpo could not be measured: the workload ledger was not written"),
	)
})
