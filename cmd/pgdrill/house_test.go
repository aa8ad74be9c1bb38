package main_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/pgdrill/pgdrill/scenarios"
)

var _ = Describe("the house", func() {
	It("has one way in: the CLI reaches the harness only through harness/drill", func() {
		allowed := []string{"github.com/pgdrill/pgdrill/harness/drill", "github.com/pgdrill/pgdrill/harness/exitcode",
			"github.com/pgdrill/pgdrill/reports", "github.com/pgdrill/pgdrill/scenarios"}
		files, err := filepath.Glob("internal/cli/*.go")
		Expect(err).NotTo(HaveOccurred())
		Expect(files).NotTo(BeEmpty())
		var seen []string
		for _, file := range files {
			f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
			Expect(err).NotTo(HaveOccurred())
			for _, imp := range f.Imports {
				path, err := strconv.Unquote(imp.Path.Value)
				Expect(err).NotTo(HaveOccurred())
				if !strings.HasPrefix(path, "github.com/pgdrill/pgdrill/") {
					continue
				}
				seen = append(seen, path)
				Expect(allowed).To(ContainElement(path), "%s imports %s: go through harness/drill instead", file, path)
			}
		}
		Expect(seen).To(ContainElement("github.com/pgdrill/pgdrill/harness/drill"), "the spec reads the CLI's files")
	})

	It("lets one package import testcontainers-go: the container provider's", func() {
		var importers []string
		Expect(filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			for _, imp := range f.Imports {
				if strings.HasPrefix(strings.Trim(imp.Path.Value, `"`), "github.com/testcontainers/") {
					importers = append(importers, filepath.Dir(path))
				}
			}
			return nil
		})).To(Succeed())
		Expect(importers).NotTo(BeEmpty(), "the spec walks the module")
		Expect(slices.Compact(importers)).To(ConsistOf(filepath.Join("..", "..", "harness", "cluster", "container")))
	})

	It("lists in --help exactly the strategies the registry has, where each can run", func() {
		builtin := scenarios.StrategiesWhere(func(s scenarios.StrategyInfo) bool { return s.Name != scenarios.RunbookStrategy })
		run := pgdrill("run", "--help")
		Eventually(run).Should(gexec.Exit(0))
		Expect(string(run.Out.Contents())).To(ContainSubstring(strings.Join(builtin, ", ")))

		restore := pgdrill("restore", "--help")
		Eventually(restore).Should(gexec.Exit(0))
		help := string(restore.Out.Contents())
		fromFile := scenarios.StrategiesWhere(func(s scenarios.StrategyInfo) bool { return s.FromIncidentFile })
		Expect(help).To(ContainSubstring("alone: one of " + strings.Join(fromFile, ", ")))
		Expect(help).To(ContainSubstring(strings.Join(builtin, ", ")))
		Expect(fromFile).NotTo(ContainElement("delayed-standby"), "a standby is the drill's, not in an incident file")
		Expect(slices.Contains(fromFile, "pitr-sidecar")).To(BeTrue())
	})
})
