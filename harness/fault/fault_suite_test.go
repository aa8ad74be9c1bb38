package fault_test

import (
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"

	"github.com/pgdrill/pgdrill/harness/cluster/local"
	"github.com/pgdrill/pgdrill/harness/drilltest"
)

func TestFault(t *testing.T) { drilltest.RunSpecs(t, "fault") }

var provider *local.Provider

var _ = BeforeSuite(func(ctx context.Context) { provider = drilltest.NewLocalProvider(ctx) })
