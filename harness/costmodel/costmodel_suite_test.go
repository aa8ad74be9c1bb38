package costmodel_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestCostModel(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "costmodel")
}
